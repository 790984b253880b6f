"""TrainerConfig is the one source of the trainer defaults: each preset composes to the schedule its source states
(the table below, one row a preset, read off the source each preset's YAML names), the step unit's defaults follow
the unit, and the step-counted MNIST presets give the paper's and Ren et al.'s schedules."""
from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from cdb.train.config import TrainerConfig
from helpers import REPO, compose

KEYS = ("unit", "length", "eval_every", "batch_size", "lr", "momentum", "weight_decay", "schedule", "milestones",
        "gamma", "lr_warmup", "select")
SCHEDULES = {
    # preset: unit, length, eval_every, batch, lr, momentum, wd, schedule, milestones, gamma, warm-up, select
    "cifar_lt": ("epoch", 200, 1, 128, 0.1, 0.9, 5e-4, "step", [160, 180], 0.01, 5, "last"),  # paper 4.2, Cui et al.
    "cifar_lt_authors": ("epoch", 240, 1, 128, 0.1, 0.9, 5e-4, "step", [160, 210], 0.01, 5, "last"),  # authors' code
    "egtea": ("epoch", 100, 1, 32, 1e-3, 0.9, 5e-4, "step", [60], 0.1, 0, "last"),  # paper 4.2
    "imagenet_lt_authors": ("epoch", 90, 1, 512, 0.2, 0.9, 2e-4, "cosine", [], 0.1, 0, "last"),  # authors' config
    "imagenet_lt_oltr": ("epoch", 30, 1, 128, 0.1, 0.9, 5e-4, "step", [10, 20], 0.1, 0, "last"),  # OLTR stage 1
    "mnist": ("epoch", 4000, 1, 100, 1e-3, 0.9, 5e-4, "step", [3000], 0.1, 0, "last"),  # paper 4.2 read as passes
    "mnist_ren": ("step", 8000, 50, 100, 1e-3, 0.9, 0.0, "step", [4001], 0.5, 0, "last"),  # Ren et al.'s code
    "mnist_steps": ("step", 4000, 50, 100, 1e-3, 0.9, 5e-4, "step", [3000], 0.1, 0, "last"),  # paper 4.2 as steps
    "small_folder": ("epoch", 30, 1, 64, 0.01, 0.9, 5e-4, "step", [20, 25], 0.1, 0, "best"),  # the own-data study
}
# each dataset's paper model and trainer preset (auto: chosen from the image size once the data is built)
DATASET_RECIPES = {"cifar_lt": ("resnet32", "cifar_lt"), "cifar_lt_authors": ("resnet32", "cifar_lt_authors"),
                   "egtea": ("resnext3d_101", "egtea"), "folder": ("auto", "auto"),
                   "imagenet_lt": ("resnet10", "imagenet_lt_oltr"), "mnist_imbalanced": ("lenet_ren", "mnist_ren")}


def _schedule_of(trainer) -> tuple:
    return tuple(list(trainer[k]) if k == "milestones" and trainer[k] is not None else trainer[k] for k in KEYS)


@pytest.mark.parametrize("preset", sorted(SCHEDULES))
def test_each_preset_composes_to_its_sources_schedule(preset):
    assert _schedule_of(compose([f"trainer={preset}"]).trainer) == SCHEDULES[preset]


def test_every_preset_is_in_the_table():
    presets = {p.stem for p in (REPO / "configs" / "trainer").glob("*.yaml")} - {"auto"}
    assert presets == set(SCHEDULES)  # a new preset: add its row, with its source


@pytest.mark.parametrize("dataset", sorted(DATASET_RECIPES))
def test_each_dataset_picks_its_papers_model_and_trainer(dataset):
    model, trainer = DATASET_RECIPES[dataset]
    cfg = compose([f"dataset={dataset}"])
    assert cfg.model.name == model
    expected = (None,) * len(KEYS) if trainer == "auto" else SCHEDULES[trainer]
    assert _schedule_of(cfg.trainer) == expected


def test_runtime_settings_are_trainer_bases_with_every_preset():
    base = {f.name: f.default for f in dataclasses.fields(TrainerConfig)
            if f.name in ("devices", "amp", "channels_last", "compile", "num_workers", "device")}
    for preset in SCHEDULES:
        t = compose([f"trainer={preset}", "trainer.devices=2", "trainer.amp=true"]).trainer
        assert (t.devices, t.amp) == (2, True)
        assert t.channels_last == base["channels_last"] and t.compile == base["compile"], preset


def test_presets_state_only_what_differs_from_what_they_start_from():
    from cdb.config import load_preset

    for path in sorted((REPO / "configs" / "trainer").glob("*.yaml")):
        own = OmegaConf.load(path)
        parents = [p for p in own.pop("defaults") if p != "_self_"]
        assert parents, f"{path.name} must start from trainer/base (directly or through another preset)"
        inherited = OmegaConf.to_container(OmegaConf.merge(*[load_preset("trainer", p) for p in parents]))
        own = OmegaConf.to_container(own)  # unresolved: ${...} presets compare as written
        same = [k for k in own if k in inherited and inherited[k] == own[k]]
        assert not same, f"{path.name} repeats {same}, which it inherits unchanged"


def test_runtime_settings_and_schema_types_hold_with_every_preset():
    cfg = compose(["trainer=egtea", "trainer.devices=2", "trainer.lr=1"])
    assert cfg.trainer.devices == 2 and cfg.trainer.num_workers == 8
    assert isinstance(cfg.trainer.lr, float)  # the schema makes trainer.lr=1 the float 1.0


def test_step_unit_defaults_follow_the_unit():
    # docs/commands.md's example: 2000 steps of the MNIST default (P3), validation once per pass (50 steps), lr halved after
    # half the run (Ren et al.'s rule follows the length)
    step = compose(["loss=cdb", "loss.tau=1.5", "trainer.length=2000"])
    assert (step.trainer.unit, step.trainer.eval_every, list(step.trainer.milestones)) == ("step", 50, [1001])
    passes = compose(["trainer=mnist", "trainer.length=2000", "trainer.unit=step"])  # LeNet-5's recipe in steps
    assert passes.trainer.eval_every == 50 and list(passes.trainer.milestones) == [1500]
    epoch = compose(["trainer=mnist"])  # the paper's numbers read as passes are unchanged
    assert epoch.trainer.unit == "epoch" and epoch.trainer.eval_every == 1 and list(epoch.trainer.milestones) == [3000]
    given = compose(["trainer=mnist", "trainer.unit=step", "trainer.eval_every=5", "trainer.milestones=[]"])
    assert given.trainer.eval_every == 5 and list(given.trainer.milestones) == []
    commands = (REPO / "docs" / "commands.md").read_text()
    assert "cdb-run loss=cdb loss.tau=1.5 trainer.length=2000 " in commands


def _schedule(preset):
    t = TrainerConfig.from_dict(dict(compose([f"trainer={preset}"]).trainer))
    return t, [t.lr_at(u) for u in range(t.length)]


def test_paper_numbers_read_as_steps():
    # sec. 4.2: 4000, lr 1e-3 x0.1 after 3000, wd 5e-4, momentum 0.9, batch 100; CDB update every 5000 images
    t, lrs = _schedule("mnist_steps")
    assert (t.unit, t.length, t.batch_size, t.momentum, t.weight_decay, t.eval_every) == \
        ("step", 4000, 100, 0.9, 5e-4, 50)
    assert lrs[2999] == pytest.approx(1e-3) and lrs[3000] == pytest.approx(1e-4) and lrs[-1] == pytest.approx(1e-4)


def test_ren_baseline_schedule():
    # mnist_train.py: 2 x 4000 steps, lr 1e-3 halved when 0-based step > 4000, momentum 0.9, no weight decay
    t, lrs = _schedule("mnist_ren")
    assert (t.unit, t.length, t.batch_size, t.momentum, t.weight_decay, t.eval_every) == \
        ("step", 8000, 100, 0.9, 0.0, 50)
    assert lrs[4000] == pytest.approx(1e-3) and lrs[4001] == pytest.approx(5e-4) and lrs[-1] == pytest.approx(5e-4)
    assert sum(lr == pytest.approx(1e-3) for lr in lrs) == 4001
    l2rw = TrainerConfig.from_dict(dict(compose(["trainer=mnist_ren", "loss=l2rw"]).trainer))  # reweight.py: 4000
    assert (l2rw.length, [l2rw.lr_at(u) for u in (2000, 2001)]) == (4000, [pytest.approx(1e-3), pytest.approx(5e-4)])
