"""TrainerConfig: the learning-rate schedules by hand (step milestones with warm-up; the cosine schedule of the
ImageNet-LT recipes of classifier-balancing and the authors' CDB config) and its one-line setting errors."""
from __future__ import annotations

import math

import pytest
from cdb.core.errors import CdbError, ConfigError
from cdb.train.config import TrainerConfig


def test_cosine_by_hand():
    cfg = TrainerConfig.from_dict({"schedule": "cosine", "lr": 0.2, "length": 90, "milestones": [30]})
    assert cfg.lr_at(0) == pytest.approx(0.2)
    assert cfg.lr_at(45) == pytest.approx(0.1)                          # half way: lr / 2
    assert cfg.lr_at(89) == pytest.approx(0.1 * (1 + math.cos(math.pi * 89 / 90)))
    step = TrainerConfig.from_dict({"lr": 0.1, "length": 30, "milestones": [10, 20]})
    assert [step.lr_at(u) for u in (9, 10, 20)] == pytest.approx([0.1, 0.01, 0.001])
    with pytest.raises(ConfigError, match="trainer.schedule"):
        TrainerConfig.from_dict({"schedule": "linear"})


def test_lr_schedule_milestones_and_lr_warmup():
    c = TrainerConfig.from_dict({"lr": 0.1, "milestones": [160, 180], "gamma": 0.01, "lr_warmup": 5})
    assert c.lr_at(0) == pytest.approx(0.1 / 5) and c.lr_at(4) == pytest.approx(0.1)
    assert c.lr_at(159) == pytest.approx(0.1) and c.lr_at(160) == pytest.approx(1e-3)
    assert c.lr_at(180) == pytest.approx(1e-5)


def test_bad_trainer_settings():
    with pytest.raises(CdbError, match="trainer.unit"):
        TrainerConfig.from_dict({"unit": "fortnight"})
    with pytest.raises(CdbError, match="trainer.lrr"):
        TrainerConfig.from_dict({"lrr": 0.1})
    with pytest.raises(CdbError, match="trainer.select"):
        TrainerConfig.from_dict({"select": "test"})
