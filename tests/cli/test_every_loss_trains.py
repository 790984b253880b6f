"""Every loss trains end to end through the CLI on real MNIST 4/9 (one Hydra multirun, a few steps each).

The sweep runs under the Table 1 quick preset (cut to 2 steps, one ratio, one seed), so the same runs also
check that preset's wiring: run directories under <output root>/table1_quick and `cdb-table table1` rows.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from cdb.rundir.io import load_checkpoint
from helpers import REPO, confusion_error, multirun, read_log

LOSSES = sorted(p.stem for p in (REPO / "configs" / "loss").glob("*.yaml"))


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory, mnist_dir) -> dict[str, Path]:
    return multirun(tmp_path_factory.mktemp("cli"), mnist_dir, "experiment=table1_quick", f"loss={','.join(LOSSES)}",
                    "dataset.majority_ratio=0.99", "seed=0", "trainer.length=2", "trainer.eval_every=1")


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_trains_through_the_cli(short_runs, loss):
    run = short_runs[loss]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "complete"
    # the reported error is the one counted from the saved confusion matrix of all 1600 test images
    confusion = metrics["checkpoints"]["last"]["test_confusion"]
    n, error, per_class = confusion_error(confusion)
    assert n == metrics["test"]["n"] == 1600 and [sum(r) for r in confusion] == [800, 800]
    assert metrics["test"]["error"] == pytest.approx(error)
    assert metrics["test"]["per_class_accuracy"] == pytest.approx(per_class)
    rows = read_log(run)
    assert [r["unit"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["train_loss"]) and r["train_loss"] >= 0 for r in rows)
    assert len(metrics["final_weights"]) == 2 and all(math.isfinite(w) for w in metrics["final_weights"])
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["loss"]["label"]
    # the checkpoint (weighting state included: MW-Net's MLP and optimizer) loads with weights_only=True
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["unit"] == 2 and isinstance(state["weighting"]["weights"], torch.Tensor)


def test_mwn_checkpoint_holds_its_mlp_and_optimizer(short_runs):
    state = load_checkpoint(short_runs["mwn"] / "checkpoints" / "last.pt")["weighting"]
    assert state["net"]["0.weight"].shape == (100, 1) and state["net"]["2.weight"].shape == (1, 100)
    assert state["optimizer"]["state"]   # momentum buffers after two steps


def test_table1_is_built_from_the_preset_runs(short_runs, tmp_path):
    runs_dir = next(iter(short_runs.values())).parents[1]
    assert runs_dir.name == "table1_quick"          # the preset's name, not the config default
    proc = subprocess.run([sys.executable, "-c", "from cdb.cli.table import main; main()", "table1", "--runs",
                           str(runs_dir), "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split(",") for line in (tmp_path / "table1.csv").read_text().splitlines()[1:]]
    filled = {(r[1], r[2]) for r in rows if r[5] != "0"}
    # every Table 1 row has its run(s) in the 0.99 column (CDB-CE: cdb only); nothing else is filled
    # (cdb_stabilised, cdb_focal, mwn, ... are not Table 1 rows)
    assert filled == {(label, "0.99") for label in ("CE", "IFW", "Focal", "CB", "EQL", "L2RW", "CDB-CE")}
