"""Composition errors as one line (cdb.cli.composition), in-process: Hydra and OmegaConf refuse the command line while
composing, and their own exceptions become `cdb-run: error: <line>` with "did you mean" where a close name exists;
before Hydra starts a key given twice keeps its last value and `+key` for a key no config has is refused."""
from __future__ import annotations

import pytest
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from cdb.build.checks import check_run
from cdb.cli.composition import PLUGIN_EXTRAS, check_command_line, one_line
from cdb.core.errors import CdbError
from helpers import REPO, compose


def _line(*overrides: str) -> str:
    with pytest.raises(Exception) as exc:
        compose(list(overrides))
    return one_line(exc.value, list(overrides))


@pytest.mark.parametrize("overrides, line", [
    (["lossx=ce"], "lossx is not a setting of cdb-run (cdb-run --help lists them); did you mean loss?"),
    (["trainer.lrr=0.1"], "trainer.lrr is not a setting; did you mean trainer.lr?"),
    (["loss.tauu=1"], "loss.tauu is not a setting; did you mean loss.tau?"),
    (["~trainer.lr"], "~trainer.lr: a setting cannot be deleted; give it a value instead (trainer.lr=...)"),
    (["trainer.lr=abc"], "trainer.lr='abc' is not allowed: a number"),
    (["trainer.batch_size=2.5"], "trainer.batch_size=2.5 is not allowed: an integer"),
    (["trainer.milestones=5"], "trainer.milestones=5 is not allowed: a list, e.g. [3000]"),
    (["trainer.nesterov=maybe"], "trainer.nesterov='maybe' is not allowed: true or false"),
])
def test_hydras_and_omegaconfs_own_errors_become_one_line(overrides, line):
    assert _line(*overrides) == line


def test_a_misspelt_choice_lists_the_choices_and_the_closest():
    line = _line("model=lenet")
    assert line.startswith("model='lenet' is not allowed: one of ['auto', 'lenet5', 'lenet_ren'")
    assert line.endswith("; did you mean lenet5?")
    assert "did you mean" not in _line("loss=zzzzzz")  # nothing close: no guess


def test_group_null_and_bad_override_syntax():
    assert _line("dataset=null").startswith("dataset=null is not allowed: one of ['cifar_lt'")
    assert _line("name=日本語").startswith("'name=日本語' is not a valid override: write key=value, and quote")
    assert compose(["name='日本語'"]).name == "日本語"  # quoted, as the line says, it composes


@pytest.mark.parametrize("preset", ["launcher/local2", "launcher/slurm", "sweeper/tune"])
def test_a_missing_plugin_names_the_extra_that_installs_it(preset):
    # each preset builds on a plugin's own config; without the plugin, Hydra misses exactly that config
    parent = [d for d in OmegaConf.load(REPO / "configs" / "hydra" / f"{preset}.yaml").defaults if isinstance(d, str)]
    missing = f"hydra/{preset.split('/')[0]}/{parent[0]}"
    assert missing in PLUGIN_EXTRAS
    exc = MissingConfigException("not found", missing_cfg_file=missing, options=["basic"])
    plugin, extra = PLUGIN_EXTRAS[missing]
    assert one_line(exc, []) == \
        f"{missing} needs the {plugin} plugin, which is not installed: pip install 'cdb-loss[{extra}]'"


def test_a_key_given_twice_keeps_its_last_value_and_a_plus_key_no_config_has_is_refused():
    assert check_command_line(["trainer.length=400", "-m", "loss=ce", "trainer.length=60"]) == \
        ["-m", "loss=ce", "trainer.length=60"]
    with pytest.raises(CdbError, match=r"^lossx is not a setting of cdb-run; did you mean loss\?$"):
        check_command_line(["+lossx=ce"])
    ok = ["-m", "seed=0,1", "+dataset.majority_ratio=0.9", "loss=ce", "hydra.verbose=true"]
    assert check_command_line(ok) == ok


def test_a_bug_is_not_a_composition_error():
    assert one_line(RuntimeError("boom"), []) is None and one_line(KeyError("x"), []) is None


@pytest.mark.parametrize("override, needle", [
    ("seed=abc", "seed='abc' is not allowed: an integer in [0, 4294967296)"),
    ("threads=-1", "threads=-1 is not allowed: null (PyTorch's default) or an integer >= 1"),
    ("trainer.progress=maybe", "trainer.progress='maybe' is not allowed: auto, true or false"),
])
def test_settings_without_a_schema_type_are_checked_on_the_composed_config(override, needle):
    with pytest.raises(CdbError) as exc:
        check_run(compose([override]), [override])
    assert str(exc.value) == needle
