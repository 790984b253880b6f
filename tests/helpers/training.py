"""A tiny in-process training run (60 random images, 4 steps of LeNet-5) for the speed settings, which must
change how the trainer computes but not what (tests/unit/train/test_speed_settings.py,
tests/slow/test_compiled_model.py).
"""
from __future__ import annotations

import torch

from cdb.data.base import DatasetSplits, TensorSplit
from cdb.losses import build_criterion
from cdb.models.lenet import LeNet5
from cdb.train.config import TrainerConfig
from cdb.train.loop import train_alone
from cdb.train.run import RunState


def tiny_splits():
    g = torch.Generator().manual_seed(0)
    split = TensorSplit(torch.randint(0, 256, (60, 1, 28, 28), dtype=torch.uint8, generator=g), torch.arange(60) % 2)
    return DatasetSplits("t", split, split, split, 2, ["a", "b"], (1, 28, 28), (0.5,), (0.25,))


def train_tiny(tmp_path, **speed):
    data = tiny_splits()
    torch.manual_seed(0)
    crit = build_criterion({"base": "ce", "weighting": "none"}, 2, data.class_counts)
    cfg = TrainerConfig(unit="step", length=4, eval_every=4, batch_size=20, lr=0.05, device="cpu", progress=False,
                        **speed)
    trainer = RunState(LeNet5(2), data, crit, cfg, tmp_path)
    train_alone(trainer)
    return trainer
