"""Run-directory pre-flight: one process per run directory, nothing written into a finished run, no debris.

`claim(run_dir, resume)` is what cdb-run holds while a run trains:
- the output location must be writable (checked before anything is made there);
- an exclusive lock, `<run_dir>/.lock`, holds the owner's pid and host. It is an flock(2) lock, so the
  kernel releases it when the owner dies (kill -9 included): a stale lock file is simply taken over;
- a directory that already holds a run is refused unless resume=true, before any file in it changes;
- temporary files a kill left behind during a write (cdb.rundir.io.TMP_GLOB) are removed;
- if a run that started in an empty directory fails before its first checkpoint, the half-made directory
  is removed, so it cannot pass for a run, with the folders above it that the claim made (cdb-run removes those
  that Hydra made for the run, and never one that existed before the command).
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from cdb.core.errors import CdbError
from cdb.rundir import CHECKPOINTS, LAST, METRICS

log = logging.getLogger(__name__)

LOCK = ".lock"


@dataclass(frozen=True)
class Claim:
    """What the pre-flight found: `fresh` (the directory was empty), `finished` (it holds final metrics)."""

    run_dir: Path
    fresh: bool
    finished: bool


def check_writable(path: str | Path) -> None:
    """Refuse in one line when `path` cannot be made or written (checked on its nearest existing ancestor)."""
    target = Path(path).absolute()
    p = target
    while not p.exists():
        p = p.parent
    if not p.is_dir():
        raise CdbError(f"cannot make the run directory {target}: {p} is a file; choose another output_root "
                       "(or CDB_OUTPUT_ROOT)")
    if not os.access(p, os.W_OK | os.X_OK):
        raise CdbError(f"cannot write {p}: permission denied; choose a writable output_root (or CDB_OUTPUT_ROOT)")


def _owner(path: Path) -> str:
    try:
        pid, _, host = path.read_text().strip().partition(" ")
        return f"pid {int(pid)} on {host or 'this host'}"
    except (OSError, ValueError):
        return "another process"


@contextlib.contextmanager
def lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold `<run_dir>/.lock` exclusively; a second holder gets a one-line CdbError naming the directory."""
    run_dir = Path(run_dir)
    path = run_dir / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CdbError(f"{run_dir} is in use by another cdb-run ({_owner(path)}); wait for it to finish, or "
                           "choose another name or output_root") from None
        # the file may have been unlinked by its previous holder between our open and our flock: retry then
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    stale = os.read(fd, 200).decode(errors="replace").strip()
    if stale:  # written by a process that died holding it (a live holder would still hold the flock)
        log.warning("took over the lock of %s from a process that ended without releasing it (%s)", run_dir, stale)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
    log.debug("holding %s (pid %d)", path, os.getpid())
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)  # closing releases the flock


def remove_orphans(run_dir: Path) -> list[Path]:
    """Delete the temporary files that a kill during an atomic write left in the run directory."""
    from cdb.rundir.io import TMP_GLOB

    found = [p for d in (run_dir, run_dir / CHECKPOINTS) if d.is_dir() for p in d.glob(TMP_GLOB)]
    for p in found:
        p.unlink(missing_ok=True)
        log.info("removed %s, left by an interrupted write", p)
    return found


def _remove_half_made(run_dir: Path) -> None:
    """Empty a run directory of a failed fresh run (the lock stays until released), and its empty parent."""
    for p in run_dir.iterdir():
        if p.name != LOCK:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)


def already_holds_a_run(run_dir: str | Path) -> CdbError:
    """The refusal of a run directory that holds a checkpoint when resume=true was not given."""
    return CdbError(f"{run_dir} already holds a run; pass resume=true to continue it "
                    "(a finished run is then only reported), or remove that directory to start over")


@contextlib.contextmanager
def claim(run_dir: str | Path, resume: bool) -> Iterator[Claim]:
    """Pre-flight checks and the lock around one run; see the module docstring."""
    run_dir = Path(run_dir)
    check_writable(run_dir)
    made = missing_dirs(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    failed_fresh = False
    try:
        with lock(run_dir):
            fresh = not any(p.name != LOCK for p in run_dir.iterdir())
            if (run_dir / LAST).exists() and not resume:
                raise already_holds_a_run(run_dir)
            remove_orphans(run_dir)
            try:
                yield Claim(run_dir, fresh, (run_dir / METRICS).exists())
            except BaseException:
                if fresh and not (run_dir / LAST).exists():
                    failed_fresh = True
                    _remove_half_made(run_dir)
                raise
    finally:
        if failed_fresh:  # the lock is released now: the emptied run directory, and the folders this claim made
            remove_made([run_dir.absolute(), *made[1:]] if made else [run_dir.absolute()])


def missing_dirs(path: str | Path) -> list[Path]:
    """`path` and those of its ancestors that do not exist yet, deepest first: what making `path` would create."""
    out = []
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def remove_made(dirs: list[Path], under: Path | None = None) -> None:
    """rmdir the directories a command made (missing_dirs before it ran), deepest first, while they are empty; with
    `under`, only `under` itself and its ancestors among them. Nothing that existed before is touched."""
    under = Path(under).absolute() if under is not None else None
    for d in dirs:
        if (under is not None and d != under and d not in under.parents) or not d.exists():
            continue  # not on this run's path, or removed already (the claim empties a failed fresh run)
        try:
            d.rmdir()
        except OSError:
            return


def remove_empty(run_dir: Path) -> None:
    """rmdir the run directory and the folders above it that it leaves empty (<overrides>/, <name>/).

    rmdir removes only empty directories, so a finished run, a run that claimed the directory meanwhile,
    or a sweep folder (it holds multirun.yaml) is never touched."""
    for d in (run_dir, run_dir.parent, run_dir.parent.parent):
        try:
            d.rmdir()
        except OSError:
            return
