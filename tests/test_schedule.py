"""The cosine learning-rate schedule (ImageNet-LT recipes of classifier-balancing and the authors' CDB config)."""
from __future__ import annotations

import math

import pytest
from cdb.core.errors import ConfigError
from cdb.train.config import TrainerConfig
from conftest import compose


def test_cosine_by_hand():
    cfg = TrainerConfig.from_dict({"schedule": "cosine", "lr": 0.2, "length": 90, "milestones": [30]})
    assert cfg.lr_at(0) == pytest.approx(0.2)
    assert cfg.lr_at(45) == pytest.approx(0.1)                          # half way: lr / 2
    assert cfg.lr_at(89) == pytest.approx(0.1 * (1 + math.cos(math.pi * 89 / 90)))
    step = TrainerConfig.from_dict({"lr": 0.1, "length": 30, "milestones": [10, 20]})
    assert [step.lr_at(u) for u in (9, 10, 20)] == pytest.approx([0.1, 0.01, 0.001])
    with pytest.raises(ConfigError, match="trainer.schedule"):
        TrainerConfig.from_dict({"schedule": "linear"})


def test_imagenet_lt_recipes():
    oltr = compose(["dataset=imagenet_lt"]).trainer
    authors = compose(["dataset=imagenet_lt", "trainer=imagenet_lt_authors"]).trainer
    assert (oltr.schedule, oltr.lr, oltr.batch_size, oltr.length, list(oltr.milestones)) == \
        ("step", 0.1, 128, 30, [10, 20])
    assert (authors.schedule, authors.lr, authors.batch_size, authors.length, authors.weight_decay) == \
        ("cosine", 0.2, 512, 90, 0.0002)
