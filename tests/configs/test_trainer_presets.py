"""TrainerConfig is the one source of the trainer defaults: the presets on top of it compose to the same settings,
the step unit's defaults follow the unit, and the step-counted MNIST presets give the paper's and Ren et al.'s
schedules.

tests/data/trainer_nodes_before.json holds the resolved `trainer` node of every case below, composed by this
file's `_nodes()` on main at e5c7877, before the presets started from trainer/base (regenerate only on purpose:
`PYTHONPATH=.:tests python tests/configs/test_trainer_presets.py tests/data/trainer_nodes_before.json`).
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cdb.train.config import TrainerConfig
from helpers import DATA, REPO, compose

BEFORE = DATA / "trainer_nodes_before.json"


def _cases(root: Path) -> list[list[str]]:
    """Every dataset with its own trainer preset and with each trainer=... alternative, every experiment, and the
    run-time/unit overrides that must work with any preset."""
    names = {g: sorted(p.stem for p in (root / g).glob("*.yaml")) for g in ("dataset", "trainer", "experiment")}
    cases = [[]] + [[f"dataset={d}"] for d in names["dataset"]]
    cases += [[f"dataset={d}", f"trainer={t}"] for d in names["dataset"] for t in names["trainer"]]
    cases += [[f"experiment={e}"] for e in names["experiment"]]
    cases += [[f"trainer={t}", "trainer.unit=step"] for t in names["trainer"] if t != "auto"]
    cases += [[f"trainer={t}", "trainer.devices=2", "trainer.amp=true"] for t in names["trainer"]]
    return cases


def _nodes(cases) -> dict[str, dict]:
    from hydra import compose as hydra_compose, initialize_config_dir

    from cdb.config import config_dir

    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return {" ".join(c): OmegaConf.to_container(hydra_compose("config", overrides=c).trainer, resolve=True)
                for c in cases}


# protocol P3 (trainer/mnist_ren.yaml) became the MNIST 4/9 recipe, so these cases now compose to what
# "dataset=mnist_imbalanced trainer=mnist_ren" composed to (the quick tables and the demo in channels-last)
P3_DEFAULT = {"": False, "dataset=mnist_imbalanced": False, "experiment=table1": False, "experiment=table2": False,
              "experiment=table1_quick": True, "experiment=table2_quick": True, "experiment=demo": True}


def _changed_on_purpose(case: str, key: str, before, snapshot: dict):
    """What a setting is now where it changed on purpose since the snapshot, else its value in the snapshot."""
    if case in P3_DEFAULT and key != "progress":
        return True if key == "channels_last" and P3_DEFAULT[case] else \
            snapshot["dataset=mnist_imbalanced trainer=mnist_ren"][key]
    if key == "progress" and before is not None:
        return "auto"   # a bar on a terminal, none in CI or sweeps (was true; false in mnist_quick, table1/2)
    if case == "trainer=small_folder trainer.unit=step" and key == "eval_every":
        return None     # one pass over the training split, counted from the data (cdb/build/recipe.py)
    if "trainer=small_folder" in case and key == "select":
        return "best"   # the own-data study (results/own_data_study/selection.md, docs/own-data.md)
    return before


def test_every_preset_composes_to_the_settings_it_had_before():
    from cdb.config import config_dir
    from cdb.train.config import TrainerConfig

    before = json.loads(BEFORE.read_text())
    cases = _cases(config_dir())
    assert {" ".join(c) for c in cases} == set(before)  # a new preset or dataset: add its "before" on purpose
    defaults = {f.name: getattr(TrainerConfig(), f.name) for f in dataclasses.fields(TrainerConfig)}
    for case, now in _nodes(cases).items():
        for key, value in before[case].items():
            value = _changed_on_purpose(case, key, value, before)
            assert (now[key], type(now[key])) == (value, type(value)), (case, key)
        # a key a preset used to leave out (trainer/mnist.yaml had no `schedule`) now comes from the schema, with
        # the TrainerConfig default the trainer filled in before
        added = set(now) - set(before[case])
        assert {k: now[k] for k in added} == {k: defaults[k] for k in added}, case


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
    # the README's example: 2000 steps of the MNIST default (P3), validation once per pass (50 steps), lr halved after
    # half the run (Ren et al.'s rule follows the length)
    step = compose(["loss=cdb", "loss.tau=1.5", "trainer.length=2000"])
    assert (step.trainer.unit, step.trainer.eval_every, list(step.trainer.milestones)) == ("step", 50, [1001])
    passes = compose(["trainer=mnist", "trainer.length=2000", "trainer.unit=step"])  # LeNet-5's recipe in steps
    assert passes.trainer.eval_every == 50 and list(passes.trainer.milestones) == [1500]
    epoch = compose(["trainer=mnist"])  # the paper's numbers read as passes are unchanged
    assert epoch.trainer.unit == "epoch" and epoch.trainer.eval_every == 1 and list(epoch.trainer.milestones) == [3000]
    given = compose(["trainer=mnist", "trainer.unit=step", "trainer.eval_every=5", "trainer.milestones=[]"])
    assert given.trainer.eval_every == 5 and list(given.trainer.milestones) == []
    readme = (REPO / "README.md").read_text()
    assert "cdb-run loss=cdb loss.tau=1.5 trainer.length=2000 " in readme


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


if __name__ == "__main__":
    from cdb.config import config_dir

    Path(sys.argv[1]).write_text(json.dumps(_nodes(_cases(config_dir())), indent=1, sort_keys=True) + "\n")
