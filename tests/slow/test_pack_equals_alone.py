"""The pack loop: runs trained together as one packed network are the runs trained alone.

Exactness on real MNIST: a pack of 8 (two seeds x two majority ratios x CE and CDB-CE) against three of
its runs trained alone by `cdb-run`, in each memory layout (pack and runs alone in channels-first, and both in
channels-last), for LeNet-5 on its recipe and for the MNIST default, Ren et al.'s LeNet on protocol P3's
settings but lr 0.01 (inputs in [0, 1]; the network pack=auto packs, in pairs on this CPU, in 64s on an H200). Bitwise equality is not possible: a grouped convolution sums in
another order than a plain one (tests/unit/models/test_packed_model.py: gradients differ at 1e-7). Tolerance for
LeNet-5: the same predictions (equal validation and test confusion counts at every validation), the same CDB
weights, training losses within 1e-3 relative (measured: 1e-4 after 60 steps). For Ren et al.'s LeNet, whose runs
here have near-tie images that a change of layout alone flips, one image per class (below, NETWORKS).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import LENET5, cdb_run, read_log


SWEEP = ["seed=0,1", "dataset.majority_ratio=0.6,0.8", "loss=ce,cdb"]
VAL_PER_CLASS = 100
COMMON = [f"dataset.val_per_class={VAL_PER_CLASS}", "dataset.test_per_class=200", "trainer.unit=step",
          "trainer.length=60", "trainer.eval_every=20", "trainer.milestones=[40]", "trainer.progress=false",
          "trainer.device=cpu", "threads=1"]
# Per network: its recipe, the training-loss tolerance (relative) and the images per class a count may differ by.
# LeNet-5 (its recipe, lr 0.05): equal counts, losses within 1e-3 (measured 1e-4). Ren et al.'s LeNet (P3's settings
# but lr 0.01: at P3's 1e-3 it learns too little in 60 steps to test anything, 2 of 8 runs above 80 %): its runs here
# have near-tie images that any change of kernel flips: the CE run of seed 1 at r = 0.8 alone in channels-first and
# alone in channels-last differ by one validation image at steps 40 and 60 (measured), and the pack differs from the
# run alone by as much. So: counts within one image per class (CDB weights equal wherever the counts are), losses
# within 1e-2 (measured up to 7e-3).
NETWORKS = {"lenet5": ([*LENET5, "trainer.lr=0.05"], 1e-3, 0), "lenet_ren": (["trainer.lr=0.01"], 1e-2, 1)}
ALONE = [["seed=0", "dataset.majority_ratio=0.6", "loss=cdb"], ["seed=1", "dataset.majority_ratio=0.8", "loss=ce"],
         ["seed=1", "dataset.majority_ratio=0.8", "loss=cdb"]]


def _runs(root: Path) -> dict[str, Path]:
    return {str(p.parent.relative_to(root)): p.parent for p in root.rglob("metrics.json")}


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(NETWORKS))
@pytest.mark.parametrize("layout", [[], ["trainer.channels_last=true"]], ids=["channels_first", "channels_last"])
def test_a_run_in_a_pack_of_8_equals_the_run_alone(mnist_dir, tmp_path, layout, model):
    recipe, loss_rel, images = NETWORKS[model]
    SHORT = [*recipe, *COMMON]
    proc = cdb_run(tmp_path / "pack", "-m", *SWEEP, *SHORT, *layout, "pack=8", data=mnist_dir, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "as 1 packs of up to 8 runs" in proc.stdout + proc.stderr
    packed = _runs(tmp_path / "pack" / "out")
    assert len(packed) == 8
    for args in ALONE:
        proc = cdb_run(tmp_path / "alone", *args, *SHORT, *layout, data=mnist_dir)
        assert proc.returncode == 0, proc.stderr[-2000:]
    alone = _runs(tmp_path / "alone" / "out")
    assert len(alone) == 3 and set(alone) <= set(packed)  # the same run directories
    for name, run in alone.items():
        a, p = read_log(run), read_log(packed[name])
        assert len(a) == len(p), name
        for ra, rp in zip(a, p):  # one image of a class = 100 / VAL_PER_CLASS % of its accuracy
            gap = max(abs(x - y) for x, y in zip(ra["val_class_accuracy"], rp["val_class_accuracy"]))
            assert gap <= images * 100 / VAL_PER_CLASS + 1e-9, (name, ra["unit"], gap)
            if ra["val_class_accuracy"] == rp["val_class_accuracy"]:
                assert ra["weights"] == rp["weights"], name
            assert rp["train_loss"] == pytest.approx(ra["train_loss"], rel=loss_rel), name
        ma, mp = (json.loads((d / "metrics.json").read_text()) for d in (run, packed[name]))
        ca, cp = (m["checkpoints"]["last"]["test_confusion"] for m in (ma, mp))
        assert max(abs(x - y) for ra, rp in zip(ca, cp) for x, y in zip(ra, rp)) <= images, (name, ca, cp)
        if images == 0:
            assert ma["test"]["error"] == mp["test"]["error"]
        for f in ("config.yaml", "data.json", ".hydra/overrides.yaml"):
            assert (packed[name] / f).exists()
        assert ("channels_last: true" in (packed[name] / "config.yaml").read_text()) == bool(layout), name
        assert f"name: {model}" in (packed[name] / "config.yaml").read_text()
    # the runs really learn and differ: seeds and ratios give different data, CDB moves its weights
    final = [read_log(d)[-1] for d in packed.values()]
    assert len({json.dumps(r["val_class_accuracy"]) for r in final}) > 4
    assert sum(r["val_balanced_accuracy"] > 80 for r in final) >= 4  # CE learns; the paper's CDB may collapse here
    assert any(r["weights"] != [1.0, 1.0] for r in final)
