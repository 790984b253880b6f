"""trainer.progress: auto by default, which shows the progress bar on a terminal and keeps CI logs and
sweeps quiet; true / false force it. The rule by hand, the default, and the demo that used to be silent."""
from __future__ import annotations

import pytest

from cdb.train.config import TrainerConfig, show_progress
from helpers import compose


@pytest.mark.parametrize("tty, env, sweep, shown", [
    (True, {}, False, True),                       # a user at a terminal: the bar
    (False, {}, False, False),                     # output into a file or a pipe: no bar
    (True, {"CI": "true"}, False, False),          # CI (GitHub Actions, GitLab set CI=true): quiet
    (True, {"CI": "1"}, False, False),
    (True, {"CI": "false"}, False, True),          # CI=false says it is not CI
    (True, {"CI": ""}, False, True),
    (True, {}, True, False),                       # a sweep (-m, the pack launcher): quiet
    (False, {"CI": "true"}, True, False),
])
def test_auto_shows_progress_on_a_terminal_only(tty, env, sweep, shown):
    assert show_progress("auto", tty=tty, env=env, sweep=sweep) is shown


@pytest.mark.parametrize("setting", [True, False])
def test_true_or_false_is_what_you_get(setting):
    for tty in (True, False):
        for sweep in (True, False):
            assert show_progress(setting, tty=tty, env={"CI": "true"}, sweep=sweep) is setting


def test_auto_is_the_default_and_the_demo_uses_it():
    assert TrainerConfig().progress == "auto"
    assert compose(["experiment=demo"]).trainer.progress == "auto"           # `make demo` shows its progress
    assert compose([]).trainer.progress == "auto"
    assert compose(["trainer.progress=false"]).trainer.progress is False


@pytest.mark.parametrize("bad", ["maybe", 1, None])
def test_other_values_are_refused(bad):
    from cdb.core.errors import ConfigError

    cfg = TrainerConfig()
    cfg.progress = bad
    with pytest.raises(ConfigError, match="trainer.progress=.* is not allowed: auto, true or false"):
        cfg.validate()
