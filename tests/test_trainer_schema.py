"""TrainerConfig is the one source of the trainer defaults: the presets on top of it compose to the same settings.

tests/data/trainer_nodes_before.json holds the resolved `trainer` node of every case below, composed by this
file's `_nodes()` on main at e5c7877, before the presets started from trainer/base (regenerate only on purpose:
`python tests/test_trainer_schema.py tests/data/trainer_nodes_before.json`).
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from conftest import REPO, compose

BEFORE = Path(__file__).parent / "data" / "trainer_nodes_before.json"


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


def test_every_preset_composes_to_the_settings_it_had_before():
    from cdb.config import config_dir
    from cdb.train.config import TrainerConfig

    before = json.loads(BEFORE.read_text())
    cases = _cases(config_dir())
    assert {" ".join(c) for c in cases} == set(before)  # a new preset or dataset: add its "before" on purpose
    defaults = {f.name: getattr(TrainerConfig(), f.name) for f in dataclasses.fields(TrainerConfig)}
    for case, now in _nodes(cases).items():
        for key, value in before[case].items():
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


if __name__ == "__main__":
    from cdb.config import config_dir

    Path(sys.argv[1]).write_text(json.dumps(_nodes(_cases(config_dir())), indent=1, sort_keys=True) + "\n")
