"""A SIGTERM (or Ctrl-C) that arrives while Hydra composes or sets up, before any run began, is the usual one line
and exit 143 (130), not a traceback through Hydra's internals."""
from __future__ import annotations

import signal

import pytest

from cdb.core.errors import Terminated


@pytest.mark.parametrize("exc, code, line", [
    (Terminated("SIGTERM"), 143, "cdb-run: error: terminated (SIGTERM); run the same command again"),
    (KeyboardInterrupt(), 130, "cdb-run: error: interrupted; run the same command again"),
])
def test_a_signal_before_any_run_is_one_line(tmp_path, monkeypatch, capsys, exc, code, line):
    import hydra

    from cdb.cli import run

    def starting(*args, **kwargs):
        def app(task):
            def go():
                raise exc
            return go
        return app

    monkeypatch.setattr(hydra, "main", starting)
    monkeypatch.setenv("CDB_OUTPUT_ROOT", str(tmp_path / "out"))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with pytest.raises(SystemExit) as done:
            run.main(["loss=ce"])
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
        import logging
        logging.disable(logging.NOTSET)
    err = capsys.readouterr().err.strip()
    assert done.value.code == code and err.startswith(line) and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
