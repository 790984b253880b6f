"""trainer.compile=true on a pack: a run trained in a compiled pack of 8 is the run trained alone, compiled too, to
the tolerance of tests/slow/test_pack_equals_alone.py (LeNet-5 on real MNIST, channels-first: the same validation
and test counts, the same CDB weights, training losses within 1e-3 relative)."""
from __future__ import annotations

import json

import pytest

from helpers import cdb_run, read_log
from test_pack_equals_alone import ALONE, COMMON, NETWORKS, SWEEP, _runs


@pytest.mark.slow
def test_a_run_in_a_compiled_pack_of_8_equals_the_compiled_run_alone(mnist_dir, tmp_path):
    recipe, loss_rel, _ = NETWORKS["lenet5"]
    args = [*recipe, *COMMON, "trainer.compile=true"]
    proc = cdb_run(tmp_path / "pack", "-m", *SWEEP, *args, "pack=8", data=mnist_dir, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    packed = _runs(tmp_path / "pack" / "out")
    assert len(packed) == 8
    for one in ALONE[:2]:
        proc = cdb_run(tmp_path / "alone", *one, *args, data=mnist_dir, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-2000:]
    alone = _runs(tmp_path / "alone" / "out")
    assert len(alone) == 2 and set(alone) <= set(packed)
    for name, run in alone.items():
        a, p = read_log(run), read_log(packed[name])
        assert [r["val_class_accuracy"] for r in a] == [r["val_class_accuracy"] for r in p], name
        assert [r["weights"] for r in a] == [r["weights"] for r in p], name
        for ra, rp in zip(a, p):
            assert rp["train_loss"] == pytest.approx(ra["train_loss"], rel=loss_rel), name
        ma, mp = (json.loads((d / "metrics.json").read_text()) for d in (run, packed[name]))
        assert ma["checkpoints"]["last"]["test_confusion"] == mp["checkpoints"]["last"]["test_confusion"], name
        assert "compile: true" in (packed[name] / "config.yaml").read_text()
