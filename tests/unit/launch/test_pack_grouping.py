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


def test_pack_auto_takes_the_size_and_layout_the_bench_recorded_for_the_model(tmp_path, monkeypatch):
    import json

    import cdb.launch.pack as P

    lenet = {"pack": 8, "layout": "channels_last", "speedup": 2.1, "bench": "2026-01-01"}
    table = tmp_path / "pack_defaults.json"
    table.write_text(json.dumps({"cuda": {"models": {
        "lenet5": lenet, "resnet32": {"pack": 4, "layout": "channels_first", "speedup": 3.0, "bench": "2026-01-02"}},
        "layouts": {"lenet5": {"channels_first": {"pack": 1, "layout": None, "speedup": 1.0, "bench": "2026-01-01"},
                               "channels_last": lenet}}}}))
    monkeypatch.setattr(P, "DEFAULTS", table)
    assert P.resolve_pack("auto", "cuda", "resnet32")[:2] == (4, "channels_first")
    k, layout, note = P.resolve_pack("auto", "cuda", "lenet5")
    assert (k, layout) == (8, "channels_last")
    assert note == "pack=auto: 8 runs a pack, channels-last, 2.10x per run in make bench of 2026-01-01"
    assert P.resolve_pack("auto", "cuda", "lenet5", "channels_first")[:2] == (1, None)  # the user's layout
    assert P.resolve_pack("auto", "cuda", "lenet5", "channels_last")[:2] == (8, None)   # (already set: kept)
    assert P.resolve_pack("auto", "cuda", "lenet_ren")[:2] == (1, None)    # not timed on its own: packs of one
    assert P.resolve_pack("auto", "cpu", "resnet32")[:2] == (1, None)      # device not timed
    assert P.resolve_pack(3, "cuda", "resnet32") == (3, None, "")          # a size given: nothing else changes


def test_pack_auto_sets_its_layout_on_packs_of_two_or_more_only():
    from helpers import compose

    from cdb.launch.pack import set_layout

    jobs = [compose([f"seed={s}"]) for s in range(3)]
    assert set_layout(jobs[:2], "channels_last", "pack=auto: x") == "pack=auto: x"
    assert [j.trainer.channels_last for j in jobs] == [True, True, False]
    assert "trains alone" in set_layout(jobs[2:], "channels_last", "pack=auto: x")  # a pack of one: its own layout
    assert jobs[2].trainer.channels_last is False
