"""DDP on real MNIST: the two-process run and the one-process run it must equal (tests/unit/train/
test_distributed.py, tests/slow/test_ddp_resume.py; the one-process run is the `single` fixture).
"""
from __future__ import annotations

import json
import os

import pytest
import torch
from omegaconf import OmegaConf

from cdb.train import distributed as D
from helpers import LENET5, compose


def mnist_cfg(mnist_dir, **trainer):
    """Real MNIST 4/9 with 1031 training images: batches of 99 split 50/49 over 2 ranks, last batch 41 (21/20).

    Epoch 1 trains with plain CE (CDB warm-up), epoch 2's validation sets the
    CDB weights, epoch 3 trains with them (weighted_mean: a global weight sum).
    """
    return compose([  # LeNet-5's recipe: the equality below was measured on its dynamics at lr 0.05
        *LENET5, f"data_root={mnist_dir}", "dataset.n_train=1031", "dataset.majority_ratio=0.6",
        "dataset.val_per_class=150", "dataset.test_per_class=100", "loss=cdb", "loss.reduction=weighted_mean",
        "loss.warmup=1", "loss.floor=0.05", "trainer.unit=epoch", "trainer.length=3", "trainer.batch_size=99",
        "trainer.lr=0.05", "trainer.milestones=[2]", "trainer.device=cpu", "trainer.progress=false", "trainer.eval_batch_size=64",
        *[f"trainer.{k}={v}" for k, v in trainer.items()]])


def record(cfg, run_dir, dist=None):
    """Train, then save what this process ended with: its parameters and CDB weights."""
    from cdb.build import build_run
    from cdb.train.loop import train_alone

    trainer = build_run(cfg, run_dir, dist)
    out = train_alone(trainer, resume=bool(cfg.resume))
    rank = 0 if dist is None else dist.rank
    torch.save({"model": trainer.model.state_dict(), "weights": trainer.criterion.weighting.weights},
               os.path.join(run_dir, f"rank{rank}.pt"))
    return out


def spawn_ddp(cfg, run_dir):
    t = cfg.trainer
    return D.spawn(record, OmegaConf.to_container(cfg, resolve=True), str(run_dir), 2, t.device, t.dist_backend,
                   t.sync_bn)


def log_rows(run_dir):
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def assert_same_run(run_dir, metrics, ref_dir, ref_metrics):
    a, b = log_rows(run_dir), log_rows(ref_dir)
    assert [r["unit"] for r in a] == [1, 2, 3]
    for ra, rb in zip(a, b):
        assert ra["val_class_accuracy"] == rb["val_class_accuracy"]
        assert ra["weights"] == rb["weights"] and ra["tau"] == rb["tau"]
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-5)
    assert metrics["test"]["per_class_accuracy"] == ref_metrics["test"]["per_class_accuracy"]
    assert metrics["test"]["n"] == ref_metrics["test"]["n"] == 200  # every test image counted once
    assert metrics["final_weights"] == ref_metrics["final_weights"]
    ref = torch.load(ref_dir / "rank0.pt", weights_only=True)
    ranks = [torch.load(run_dir / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for k, v in ref["model"].items():
        assert torch.equal(ranks[0]["model"][k], ranks[1]["model"][k]), k  # DDP keeps the ranks identical
        torch.testing.assert_close(ranks[0]["model"][k], v, rtol=1e-4, atol=1e-5)
    assert torch.equal(ranks[0]["weights"], ranks[1]["weights"])
    assert torch.equal(ranks[0]["weights"], ref["weights"])


def data_root_of(run_dir):
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text())["data_root"]
