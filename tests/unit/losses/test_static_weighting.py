"""Static weightings (IFW, class-balanced, DRW, Ren et al.'s class-ratio IFW) against hand-computed weights, and
every loss config builds."""
from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from cdb.core.errors import CdbError, ConfigError
from cdb.losses import build_criterion
from cdb.losses.static import ClassBalanced, DeferredReweighting, InverseFrequency, effective_number_weights
from cdb.report.tables import SPECS
from helpers import REPO, compose

LOSS_DIR = REPO / "configs" / "loss"


def test_ifw_weights_are_inverse_frequency_with_mean_one():
    # 1/900 : 1/100 = 1 : 9, rescaled to sum 2
    w = InverseFrequency(2, torch.tensor([900, 100])).class_weights()
    assert w.tolist() == pytest.approx([0.2, 1.8])


def test_ifw_three_classes():
    counts = [50, 200, 750]
    inv = [1 / n for n in counts]
    want = [3 * v / sum(inv) for v in inv]
    assert InverseFrequency(3, torch.tensor(counts)).class_weights().tolist() == pytest.approx(want, rel=1e-6)


def test_cb_weights_match_effective_number():
    beta, counts = 0.9, [10, 100]
    raw = [(1 - beta) / (1 - beta ** n) for n in counts]
    want = [2 * r / sum(raw) for r in raw]
    assert ClassBalanced(2, torch.tensor(counts), beta=beta).class_weights().tolist() == pytest.approx(want, rel=1e-6)


def test_cb_default_beta_is_cuis():
    counts = [4950, 50]
    raw = [(1 - 0.9999) / (1 - 0.9999 ** n) for n in counts]
    want = [2 * r / sum(raw) for r in raw]
    assert ClassBalanced(2, torch.tensor(counts)).class_weights().tolist() == pytest.approx(want, rel=1e-6)


def test_cb_beta_zero_is_uniform_and_beta_to_one_is_ifw():
    counts = torch.tensor([4975, 25])
    assert effective_number_weights(counts, 0.0).tolist() == [1.0, 1.0]
    ifw = InverseFrequency(2, counts).class_weights()
    assert torch.allclose(effective_number_weights(counts, 1 - 1e-9), ifw, rtol=1e-4)


def test_cb_rejects_beta_one():
    with pytest.raises(ConfigError, match="loss.beta"):
        ClassBalanced(2, torch.tensor([10, 90]), beta=1.0)


def test_drw_switches_on_at_drw_start_and_resumes():
    counts = torch.tensor([4950, 50])
    drw = DeferredReweighting(2, counts, drw_start=160, beta=0.9999)
    tg = torch.tensor([0, 1, 1])
    assert drw.sample_weights(tg) is None          # plain loss before the switch
    drw.update(150, torch.tensor([0.9, 0.1]))
    assert drw.sample_weights(tg) is None
    info = drw.update(160, torch.tensor([0.9, 0.1]))
    raw = [(1 - 0.9999) / (1 - 0.9999 ** n) for n in (4950, 50)]
    cb = [2 * r / sum(raw) for r in raw]
    assert info["weights"] == pytest.approx(cb, rel=1e-6) and "DRW" in info["note"]
    assert drw.sample_weights(tg).tolist() == pytest.approx([cb[0], cb[1], cb[1]], rel=1e-6)
    # resume: the state survives a weights_only checkpoint round trip
    buf = io.BytesIO()
    torch.save(drw.state_dict(), buf)
    buf.seek(0)
    again = DeferredReweighting(2, counts, drw_start=160)
    again.load_state_dict(torch.load(buf, weights_only=True))
    assert again.active and torch.equal(again.class_weights(), drw.class_weights())


# ---- criteria built from the shipped configs --------------------------------------------------------------
def load_loss_cfg(name: str, **extra) -> dict:
    """configs/loss/<name>.yaml as cdb-run composes it (defaults lists and interpolations resolved)."""
    cfg = compose([f"loss={name}"])
    return {**OmegaConf.to_container(cfg.loss, resolve=True), **extra}


ALL_LOSSES = sorted(p.stem for p in LOSS_DIR.glob("*.yaml"))


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_every_loss_config_builds_and_names_itself(name):
    cfg = load_loss_cfg(name)
    assert cfg["name"] == name and cfg["label"]
    crit = build_criterion(cfg, 2, torch.tensor([4950, 50]))
    assert crit.reduction in ("mean", "weighted_mean", "sum")


def test_table1_labels_match_the_table_rows():
    labels = [load_loss_cfg(n)["label"] for n in ("ce", "ifw", "focal", "cb", "eql", "l2rw", "cdb")]
    assert labels == SPECS["table1"].rows == ["CE", "IFW", "Focal", "CB", "EQL", "L2RW", "CDB-CE"]
    stabilised = load_loss_cfg("cdb_stabilised")   # our stabilised CDB-CE: a label of its own, so no paper row
    assert (stabilised["label"], stabilised["tau"], stabilised["warmup"], stabilised["normalize"]) == \
        ("CDB-CE (stabilised)", "dynamic", 10, "mean")


def test_cb_criterion_with_beta_zero_is_cross_entropy():
    z = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    tg = torch.tensor([0, 1, 1, 1, 1, 1, 0, 1])
    crit = build_criterion(load_loss_cfg("cb", beta=0.0), 2, torch.tensor([4950, 50]))
    assert torch.allclose(crit(z, tg), F.cross_entropy(z, tg))


def test_ifw_criterion_value():
    z = torch.tensor([[0.3, -0.1], [1.0, 0.2], [-0.5, 0.5]])
    tg = torch.tensor([0, 1, 1])
    crit = build_criterion(load_loss_cfg("ifw"), 2, torch.tensor([900, 100]))
    ce = [-math.log(math.exp(r[k]) / (math.exp(r[0]) + math.exp(r[1]))) for r, k in zip(z.tolist(), tg.tolist())]
    want = (0.2 * ce[0] + 1.8 * ce[1] + 1.8 * ce[2]) / 3   # plain batch mean of w_k * CE
    assert float(crit(z, tg)) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("name", ["cdb", "cdb_focal"])
def test_cdb_with_tau_zero_is_cross_entropy(name):
    extra = {"tau": 0.0} if name == "cdb" else {"tau": 0.0, "gamma": 0.0}
    crit = build_criterion(load_loss_cfg(name, **extra), 2, torch.tensor([4950, 50]))
    crit.weighting.update(1, torch.tensor([0.2, 1.0]))   # even a class at 100% keeps weight 0^0 = 1
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(1))
    tg = torch.tensor([0, 1, 0, 1, 1, 1])
    assert torch.allclose(crit(z, tg), F.cross_entropy(z, tg), atol=1e-6)


def test_cdb_focal_weights_focal_loss():
    crit = build_criterion(load_loss_cfg("cdb_focal", tau=1.0), 2, torch.tensor([4950, 50]))
    crit.weighting.update(1, torch.tensor([0.25, 0.75]))   # 1 - A = (0.75, 0.25), tau = 1, sum 1 -> x2: (1.5, 0.5)
    z = [[0.2, -0.4], [1.5, 0.5]]
    tg = [0, 1]
    want = 0.0
    for row, k in zip(z, tg):
        p = math.exp(row[k]) / (math.exp(row[0]) + math.exp(row[1]))
        want += (1.5 if k == 0 else 0.5) * -((1 - p) ** 2) * math.log(p)
    assert float(crit(torch.tensor(z), torch.tensor(tg))) == pytest.approx(want / 2, rel=1e-5)


def test_reduction_conflicting_with_meta_weighting_is_refused():
    with pytest.raises(ConfigError, match="loss.reduction='mean'"):
        build_criterion(load_loss_cfg("l2rw", reduction="mean"), 2, torch.tensor([4950, 50]))
    with pytest.raises(ConfigError, match="loss.reduction='max'"):
        build_criterion(load_loss_cfg("ce", reduction="max"), 2, torch.tensor([4950, 50]))


def test_unknown_loss_setting_is_refused():
    with pytest.raises(ConfigError, match="loss.lambda"):
        build_criterion(load_loss_cfg("eql", **{"lambda": 0.1}), 2, torch.tensor([4950, 50]))


def test_ren_class_ratio_weights_are_summed():
    # r = 0.99 of 5000: 50 fours, 4950 nines; a four weighs r = 0.99, a nine 1 - r = 0.01, summed over the batch
    cfg = dict(compose(["loss=ifw_ren"]).loss)
    crit = build_criterion(cfg, 2, torch.tensor([50, 4950]))
    torch.testing.assert_close(crit.weighting.weights, torch.tensor([0.99, 0.01]))
    logits, y = torch.zeros(4, 2), torch.tensor([0, 1, 1, 1])
    # every sample's CE is log 2: loss = (0.99 + 3 * 0.01) log 2
    assert crit(logits, y).item() == pytest.approx(1.02 * math.log(2), rel=1e-6)
    with pytest.raises(CdbError, match="loss.scale"):
        build_criterion({**cfg}, 3, torch.tensor([5, 50, 500]))
