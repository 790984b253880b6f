"""Run-directory I/O: every file is written to a temporary name and renamed, so a crash never leaves half a file.

Final files get the mode the umask gives (0644 under umask 022), like any file the user creates, not
mkstemp's private 0600: results are meant to be read by others. Temporary names are `.cdb-partial.<file>.XXXX.tmp`
(TMP_PREFIX, TMP_GLOB), so cdb.rundir.claims removes the ones a kill left behind and never a file of the user's.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from cdb.core.errors import CdbError

TMP_PREFIX = ".cdb-partial."
TMP_GLOB = f"{TMP_PREFIX}*.tmp"


def _umask_mode() -> int:
    """0666 minus the process umask (read by setting it and putting it back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _temp_beside(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TMP_PREFIX}{path.name}.", suffix=".tmp")
    os.fchmod(fd, _umask_mode())
    return fd, tmp


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path` (the umask's mode), fsync it, rename it over `path`: a reader
    sees the old file or the new one, never a part."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """`exc` with the file it was about: a failed write() names none (a full disk said "could not write None")."""
    return exc if exc.filename else type(exc)(exc.errno, exc.strerror, str(path))


def check_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """A folder that results may be written into: refused in one line when it is a file or cannot be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CdbError(f"{flag} {path} is a file: give a folder (the files are written inside it)")
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise CdbError(f"{flag} {path}: cannot write in {probe} (permission denied or not a folder); choose "
                       "another folder")
    return path


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    path = Path(path)
    fd, tmp = _temp_beside(path)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except RuntimeError as exc:  # torch reports a failed write (disk full, size limit) as a RuntimeError
        Path(tmp).unlink(missing_ok=True)
        if any(w in str(exc) for w in ("PytorchStreamWriter", "inline_container", "write")):
            raise OSError(errno.ENOSPC, "the write failed (disk full or a file-size limit)", str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint as plain tensors and containers only (weights_only=True: no code runs).

    A damaged or foreign file is a one-line CdbError naming it; the message never suggests
    loading with weights_only=False, which would run whatever code the file holds.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # truncated zip, pickle with code in it, random bytes, ...
        # torch names the blocked global ("GLOBAL posix.system") when a file wants to run code on load
        kind = ("holds objects other than tensors (loading it could run code)" if "GLOBAL" in str(exc)
                else "is damaged or not a checkpoint")
        raise CdbError(f"checkpoint {path} {kind} and was not loaded; remove that run directory (or that file) "
                       "to start the run over") from exc
    if not isinstance(state, dict):
        raise CdbError(f"checkpoint {path} is not a cdb checkpoint (a {type(state).__name__}, not a dict); "
                       "remove that run directory (or that file) to start the run over")
    return state


def read_json(path: str | Path, hint: str = "repair it or remove that run directory to start over"):
    """A JSON file's content; a file that is not JSON is a one-line CdbError naming it (no traceback)."""
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, OSError) as exc:   # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CdbError(f"{path} cannot be read as JSON ({exc}): an interrupted write or a hand edit? {hint}") from None


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(errors="replace").splitlines():  # damaged bytes end the rows as a torn line does
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a torn last line from a crash
                break
    return rows


def write_jsonl(path: str | Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
