"""The command line's own checks (cdb.cli.argv), in-process: override value types are checked before composing,
Hydra's sweep syntax passes the group-choice check, and a missing launcher plugin names the extra to install."""
from __future__ import annotations

import pytest

from cdb.core.errors import CdbError
from helpers import compose


@pytest.mark.parametrize("override, needle", [
    ("seed=abc", "seed='abc' is not allowed: an integer in [0, 4294967296)"),
    ("trainer.lr=abc", "trainer.lr='abc' is not allowed: a number"),
    ("trainer.batch_size=2.5", "trainer.batch_size=2.5 is not allowed: an integer"),
    ("threads=-1", "threads=-1 is not allowed: null (PyTorch's default) or an integer >= 1"),
    ("trainer.progress=maybe", "trainer.progress='maybe' is not allowed: auto, true or false"),
])
def test_value_types_are_checked(override, needle):
    from cdb.cli.argv import check_override_types
    from cdb.build.checks import check_run

    with pytest.raises(CdbError) as exc:
        check_override_types([override])  # trainer.*: before composing (the trainer schema would print a page)
        check_run(compose([override]), [override])
    assert str(exc.value) == needle


def test_hydra_sweep_syntax_passes_the_group_check():
    from cdb.cli.argv import check_group_choices as _check_group_choices

    _check_group_choices(["loss=choice(ce,cdb)", "loss=glob(cb*)", "loss=ce,cdb", "seed=range(3)"])
    with pytest.raises(CdbError, match="loss='nope' is not allowed"):
        _check_group_choices(["loss=choice(ce,nope)"])
    with pytest.raises(CdbError, match="matches no config"):
        _check_group_choices(["loss=glob(zz*)"])


def test_missing_launcher_plugin_names_the_extra(monkeypatch):
    import importlib.util

    from cdb.cli import argv as cli_argv

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CdbError, match=r"pip install 'cdb\[sweep\]'"):
        cli_argv.check_group_choices(["hydra/launcher=local2"])
