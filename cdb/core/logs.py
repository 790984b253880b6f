"""Logging pieces for cdb-run's job log (configs/hydra/job_logging/cdb.yaml): a console handler that does not
break tqdm progress bars, and the filter that keeps the console to warnings unless debug output is on."""
from __future__ import annotations

import logging


class TqdmHandler(logging.StreamHandler):
    """StreamHandler that writes through tqdm.write, so a line lands above an active progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

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
