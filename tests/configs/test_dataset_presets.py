"""Dataset recipes: CIFAR-LT (the paper's and the authors' variant), the two ImageNet-LT trainers, and the folder
dataset, which keeps its class sizes and chooses model and trainer once the images are known."""
from __future__ import annotations

from helpers import compose


def test_cifar_recipe():
    cfg = compose(["dataset=cifar_lt", "imbalance=50"])
    authors = compose(["dataset=cifar_lt_authors", "imbalance=20"])
    assert cfg.dataset.imbalance == 50 and cfg.dataset.val_per_class == 50
    t = cfg.trainer
    assert (t.length, t.batch_size, t.lr, list(t.milestones), t.gamma, t.lr_warmup, t.weight_decay) == \
        (200, 128, 0.1, [160, 180], 0.01, 5, 0.0005)
    assert (authors.trainer.length, list(authors.trainer.milestones), authors.trainer.lr) == (240, [160, 210], 0.1)
    assert (authors.dataset.name, authors.dataset.split, authors.dataset.val_per_class, authors.dataset.imbalance) \
        == ("cifar_lt", "authors", 25, 20)


def test_imagenet_lt_recipes():
    oltr = compose(["dataset=imagenet_lt"]).trainer
    authors = compose(["dataset=imagenet_lt", "trainer=imagenet_lt_authors"]).trainer
    assert (oltr.schedule, oltr.lr, oltr.batch_size, oltr.length, list(oltr.milestones)) == \
        ("step", 0.1, 128, 30, [10, 20])
    assert (authors.schedule, authors.lr, authors.batch_size, authors.length, authors.weight_decay) == \
        ("cosine", 0.2, 512, 90, 0.0002)


def test_folder_config_keeps_class_sizes_unless_imbalance_is_given():
    cfg = compose(["dataset=folder", "dataset.path=x"])
    assert cfg.imbalance is None and cfg.dataset.imbalance is None      # not the top-level default of 100
    assert cfg.model.name == "auto" and cfg.trainer.lr is None          # chosen once the images are known
    cfg = compose(["dataset=folder", "dataset.path=x", "imbalance=50", "trainer.lr=0.05"])
    assert cfg.dataset.imbalance == 50 and cfg.trainer.lr == 0.05
