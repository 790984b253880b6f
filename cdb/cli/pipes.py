"""Console output into a pipe whose reader stops early (`cdb-run --help | head -1`): end quietly, as Unix tools do."""
from __future__ import annotations

import contextlib
import os
import sys

from cdb.core.errors import CdbError, user_message


def _reader_gone() -> None:
    """Python's documented recipe: point stdout at devnull, so that the interpreter's final flush does not raise
    again, and end quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(0) from None


class _PipeGuard:
    """stdout whose write and flush end the command quietly when the reader has gone: Hydra prints `--cfg` and
    `--help` inside its own error report, which would show a BrokenPipeError as a traceback (SystemExit passes it)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            _reader_gone()

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            _reader_gone()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def quiet_broken_pipe():
    """Output into a pipe whose reader has gone (`cdb-run --cfg job | head -1`): a quiet exit 0, as Unix tools do."""
    stdout = sys.stdout
    sys.stdout = _PipeGuard(stdout)
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        _reader_gone()
    finally:
        sys.stdout = stdout


@contextlib.contextmanager
def one_line_errors(prog: str):
    """An error the user can act on (a CdbError, or a file-system failure) as `<prog>: error: <line>`, exit 2; a bug
    keeps its traceback."""
    try:
        yield
    except (CdbError, OSError) as exc:
        line = user_message(exc, prog)
        if line is None:
            raise
        print(f"{prog}: error: {line}", file=sys.stderr)
        raise SystemExit(2) from None
