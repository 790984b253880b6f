"""Logging pieces for cdb-run's job log (configs/hydra/job_logging/cdb.yaml): a console handler that does not
break tqdm progress bars, the filter that keeps the console to warnings unless debug output is on, and run.log's
file handler."""
from __future__ import annotations

import logging
import os
import sys

from tqdm import tqdm


class RunLogHandler(logging.FileHandler):
    """run.log: opened at its first record, never through a symbolic link (O_NOFOLLOW: a planted link is an error
    naming it, not a file appended to), and a write that fails (a full disk) raises once, naming run.log, where
    logging would print its page of '--- Logging error ---' for every record and go on."""

    failed = False

    def _open(self):
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.fdopen(os.open(self.baseFilename, flags, 0o666), "a", encoding=self.encoding, errors=self.errors)

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:  # after a failure the log is closed: the error that stops the command says why
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            return super().handleError(record)
        self.failed = True
        stream, self.stream = self.stream, None
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
        raise OSError(exc.errno, exc.strerror, exc.filename or self.baseFilename) from None


class TqdmHandler(logging.StreamHandler):
    """StreamHandler that writes through tqdm.write, so a line lands above an active progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:  # logging must never crash the run
            self.handleError(record)


class ConsoleFilter(logging.Filter):
    """Warnings and errors; lower levels only where debug is on (hydra.verbose=true or =[logger names]).

    A record logged with extra={"console": False} goes to run.log only (the CLI prints its own one line).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "console", True):
            return False
        return record.levelno >= logging.WARNING or logging.getLogger(record.name).getEffectiveLevel() <= logging.DEBUG
