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


@contextlib.contextmanager
def one_line_errors(prog: str):
    """An error the user can act on (a CdbError, or a file-system failure) as `<prog>: error: <line>`, exit 2; a bug
    keeps its traceback."""
    from cdb.core.errors import CdbError, user_message

    try:
        yield
    except (CdbError, OSError) as exc:
        line = user_message(exc)
        if line is None:
            raise
        print(f"{prog}: error: {line}", file=sys.stderr)
        raise SystemExit(2) from None
