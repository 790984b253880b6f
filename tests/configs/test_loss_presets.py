"""Loss presets built on another (configs/loss/*.yaml with `defaults: [cdb]`): each composes every setting of the
preset it builds on, with only the keys it states changed."""
from omegaconf import OmegaConf

from helpers import compose


def _loss(name):
    return OmegaConf.to_container(compose([f"loss={name}"]).loss, resolve=True)


def test_cdb_focal_is_cdb_weighting_over_the_focal_loss():
    # every setting, spelled out: CDB's (paper eq. 2-4, the authors' normalisation, stabilisers off) over focal
    assert _loss("cdb_focal") == {
        "name": "cdb_focal", "label": "CDB-Focal", "base": "focal", "gamma": 2.0, "weighting": "cdb",
        "tau": "dynamic", "tau_rule": "paper", "eps": None, "normalize": "mean", "reduction": "mean",
        "floor": 0.0, "ema": 0.0, "warmup": 0, "min_weight": 0.0}


def test_cdb_stabilised_is_cdb_with_three_stabilisers():
    cdb, stabilised = _loss("cdb"), _loss("cdb_stabilised")
    differ = {k: (cdb[k], stabilised[k]) for k in cdb if cdb[k] != stabilised[k]}
    assert differ == {"name": ("cdb", "cdb_stabilised"), "label": ("CDB-CE", "CDB-CE (stabilised)"),
                      "warmup": (0, 10), "floor": (0.0, 0.05)}
    assert set(stabilised) == set(cdb) and stabilised["normalize"] == "mean"
