"""cdb.launch.pack: sweep jobs group into packs by what a pack shares (trainer settings, model); runs of a meta
weighting always train alone."""
from __future__ import annotations

from helpers import compose


def test_sweep_jobs_group_by_what_a_pack_shares():
    from cdb.launch.pack import pack_key

    base = ["trainer.unit=step"]
    k = pack_key(compose([*base, "seed=1", "loss=ce", "dataset.majority_ratio=0.9"]))
    assert k == pack_key(compose([*base, "seed=2", "loss=cdb", "loss.tau=2", "dataset.majority_ratio=0.99"]))
    assert k != pack_key(compose([*base, "trainer.batch_size=50"]))
    assert k != pack_key(compose([*base, "model=resnet32"]))
    l2rw = compose([*base, "loss=l2rw"])
    assert pack_key(l2rw) != pack_key(compose([*base, "loss=l2rw"]))  # meta weightings always train alone


def test_long_tailed_imbalance_shares_a_pack_with_step_units_and_heads_never_mix():
    """Imbalance ratios change a long-tailed training set's size, hence the batches of an epoch: with
    trainer.unit=step (batch_size every step) runs of any ratio pack, with epochs only runs of one ratio. LDAM's
    cosine head is another model than the plain linear classifier: other packs."""
    from cdb.launch.pack import pack_key

    lt = ["dataset=cifar_lt", "loss=cdb"]
    assert pack_key(compose([*lt, "imbalance=10"])) != pack_key(compose([*lt, "imbalance=100"]))
    step = [*lt, "trainer.unit=step"]
    assert pack_key(compose([*step, "imbalance=10", "seed=1"])) == \
        pack_key(compose([*step, "imbalance=100", "loss=ce"]))
    assert pack_key(compose([*lt, "loss.tau=2", "seed=3"])) == pack_key(compose(lt))  # Table 4's tau sweep
    assert pack_key(compose(["dataset=cifar_lt", "loss=ldam_drw"])) != pack_key(compose(lt))


def test_pack_auto_takes_the_size_the_bench_recorded_for_the_model(tmp_path, monkeypatch):
    import json

    import cdb.launch.pack as P

    table = tmp_path / "pack_defaults.json"
    table.write_text(json.dumps({"cuda": {"pack": 8, "why": "lenet5 rows", "models": {
        "lenet5": {"pack": 8, "why": "lenet5 rows"}, "resnet32": {"pack": 4, "why": "resnet32 rows"}}},
        "cpu": {"pack": 1, "why": "slower"}}))
    monkeypatch.setattr(P, "DEFAULTS", table)
    assert P.resolve_pack("auto", "cuda", "resnet32") == 4 and P.resolve_pack("auto", "cuda", "lenet5") == 8
    assert P.default_pack("cuda", "resnet32") == (4, "model=resnet32: resnet32 rows")
    assert P.resolve_pack("auto", "cuda", "lenet_ren") == 8          # not timed on its own: the device's size
    assert P.resolve_pack("auto", "cpu", "resnet32") == 1 and P.resolve_pack(3, "cuda", "resnet32") == 3
