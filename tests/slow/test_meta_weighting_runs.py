"""L2RW and Meta-Weight-Net complete a short real-MNIST run through the CLI (100 steps each).

Marked slow: about 21 s of CPU on this 2-core machine (the meta steps cost ~4x a CE step); the fast suite
still trains both for 2 steps in tests/cli/test_every_loss_trains.py.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from helpers import LENET5, multirun, read_log


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def meta_runs(tmp_path_factory, mnist_dir) -> dict[str, Path]:
    # LeNet-5's recipe: the minority lift below was measured on it
    return multirun(tmp_path_factory.mktemp("meta"), mnist_dir, "name=meta", *LENET5, "loss=l2rw,mwn", "trainer.unit=step",
                    "trainer.length=100", "trainer.eval_every=50", "trainer.lr=0.01")


@pytest.mark.parametrize("loss", ["l2rw", "mwn"])
def test_meta_methods_complete_a_short_mnist_run(meta_runs, loss):
    run = meta_runs[loss]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "complete" and metrics["checkpoints"]["last"]["unit"] == 100
    rows = read_log(run)
    assert [r["unit"] for r in rows] == [50, 100]
    assert all(math.isfinite(r["train_loss"]) for r in rows)
    # the logged per-class weights are the mean sample weight (1 = uniform); both classes were seen
    assert all(w > 0 for w in rows[-1]["weights"])
    if loss == "l2rw":
        # weights from the balanced validation gradient lift the 1% minority (digit 4) within 100 steps
        # (94% minority validation accuracy at seed 0); plain CE still predicts only the majority this early
        assert rows[-1]["val_class_accuracy"][0] > 50.0
        assert rows[-1]["weights"][0] > rows[-1]["weights"][1]
