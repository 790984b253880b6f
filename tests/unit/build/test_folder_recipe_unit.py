"""The own-data recipe (trainer/small_folder.yaml, filled by trainer=auto) follows trainer.unit as the MNIST preset
does: with trainer.unit=step a validation comes once per pass over the training split (the data
decides how many steps that is) and the lr drops at 2/3 and 5/6 of the run, as the epoch recipe's 20 and 25 of 30.
"""
from __future__ import annotations

import torch
from omegaconf import OmegaConf

from cdb.build.recipe import resolve_auto
from cdb.data.base import DatasetSplits, TensorSplit
from cdb.train.config import TrainerConfig
from helpers import compose


def small_images(n_train: int) -> DatasetSplits:
    """A stand-in for a folder of 28x28 grayscale images: n_train training images of two classes."""
    def split(n):
        return TensorSplit(torch.zeros(n, 1, 28, 28, dtype=torch.uint8), torch.arange(n) % 2)
    return DatasetSplits(name="folder", train=split(n_train), val=split(10), test=split(10), num_classes=2,
                         class_names=["a", "b"], input_shape=(1, 28, 28))


def trainer_of(overrides: list[str], n_train: int = 640) -> TrainerConfig:
    cfg = resolve_auto(compose(["dataset=folder", "dataset.path=x", *overrides]), small_images(n_train))
    return TrainerConfig.from_dict(OmegaConf.to_container(cfg.trainer, resolve=True))


def test_epoch_recipe_is_unchanged():
    t = trainer_of([])
    assert (t.unit, t.length, t.batch_size, t.eval_every, t.milestones) == ("epoch", 30, 64, 1, [20, 25])


def test_step_unit_validates_once_a_pass_and_moves_the_milestones():
    # 640 images at batch 64: 10 steps a pass; 3000 steps: lr x0.1 after 2000 and 2500 (2/3 and 5/6)
    t = trainer_of(["trainer.unit=step", "trainer.length=3000"])
    assert (t.unit, t.length, t.eval_every, t.milestones) == ("step", 3000, 10, [2000, 2500])
    # 650 images: the last batch of a pass is short, still one step: 11 steps a pass
    assert trainer_of(["trainer.unit=step", "trainer.length=3000"], n_train=650).eval_every == 11


def test_the_preset_named_follows_the_unit_too():
    t = trainer_of(["trainer=small_folder", "trainer.unit=step", "trainer.length=300"], n_train=128)
    assert (t.eval_every, t.milestones) == (2, [200, 250])


def test_settings_you_give_are_kept():
    t = trainer_of(["trainer.unit=step", "trainer.length=3000", "trainer.eval_every=7", "trainer.milestones=[100]"])
    assert (t.eval_every, t.milestones) == (7, [100])


def test_the_choice_is_recorded():
    cfg = resolve_auto(compose(["dataset=folder", "dataset.path=x", "trainer.unit=step"]), small_images(640))
    assert cfg.auto_choices.eval_every == "10 steps: one pass over the 640 training images at batch 64"
