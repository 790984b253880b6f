"""Console output into a pipe whose reader stops early (`cdb-run --help | head -1`): end quietly, as Unix tools do."""
from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_broken_pipe():
    """Turn a BrokenPipeError on stdout into a quiet exit 0 (Python's documented recipe: point stdout at devnull so
    that the interpreter's final flush does not raise again)."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(0) from None
