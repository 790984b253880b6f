"""Every loss trains end to end through the CLI on real MNIST 4/9 (one Hydra multirun, a few steps each)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from cdb.train.io import load_checkpoint
from cli_runs import REPO, multirun

LOSSES = sorted(p.stem for p in (REPO / "configs" / "loss").glob("*.yaml"))


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory, mnist_dir) -> dict[str, Path]:
    return multirun(tmp_path_factory.mktemp("cli"), mnist_dir, f"loss={','.join(LOSSES)}", "trainer.unit=step",
                    "trainer.length=2", "trainer.eval_every=1", "trainer.lr=0.01")


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_trains_through_the_cli(short_runs, loss):
    run = short_runs[loss]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "complete"
    assert 0.0 <= metrics["test"]["error"] <= 100.0
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
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
