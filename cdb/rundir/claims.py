"""Run-directory pre-flight: one process per run directory, nothing written into a finished run, no debris.

`claim(run_dir, resume)` is what cdb-run holds while a run trains:
- the output location must be writable (checked before anything is made there);
- an exclusive lock, `<run_dir>/.lock`, holds the owner's pid and host. It is an flock(2) lock, so the
  kernel releases it when the owner dies (kill -9 included): a stale lock file is simply taken over;
- a directory that already holds a run is refused unless resume=true, before any file in it changes;
- nothing is written through a symbolic link cdb did not make: a link among the folders below the output root,
  the run directory itself or any file cdb writes in it (.lock, run.log, log.jsonl, checkpoints/, ...) is refused
  in one line, as is a file where cdb keeps a folder or a folder where it keeps a file (check_layout);
- temporary files a kill left behind during a write (cdb.rundir.io.TMP_GLOB: cdb's own prefix, regular files
  only) are removed;
- a run that started in an empty directory and fails or is stopped before it logged anything (no log.jsonl row,
  no checkpoint) is removed, so it cannot pass for a run, with the folders above it that the claim made (cdb-run
  removes those that Hydra made for the run, and never one that existed before the command). A run that logged
  a validation keeps its directory: `resume=true` continues it (logged_something).
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
from cdb.rundir import BEST, CHECKPOINTS, CONFIG, DATA, EVAL, LAST, LOG, METRICS, RUN_LOG, TENSORBOARD

log = logging.getLogger(__name__)

LOCK = ".lock"
FILES = (LOCK, RUN_LOG, LOG, CONFIG, DATA, METRICS, LAST, BEST)   # what cdb writes in a run directory
FOLDERS = (CHECKPOINTS, Path(".hydra"), EVAL, TENSORBOARD)


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


def _link_line(path: Path, what: str) -> CdbError:
    hint = "remove the link (or set output_root to the folder it points to)" if what == "runs" else "remove it"
    return CdbError(f"{path} is a symbolic link (to {os.readlink(path)}); cdb writes {what} only into real folders "
                    f"and files it made, never through a link: {hint}")


def check_no_links(path: str | Path, root: str | Path | None = None) -> None:
    """Refuse `path` when it, or a folder between `root` (exclusive; the root itself may be a link) and it, is a
    symbolic link: writing there would land outside the output tree while cdb names a path inside it."""
    p = Path(path).absolute()
    top = Path(root).absolute() if root is not None else None
    inside = top is not None and (p == top or top in p.parents)
    while True:
        if p.is_symlink():
            raise _link_line(p, "runs")
        if not inside or p.parent == top or p == p.parent:
            return
        p = p.parent


def check_layout(run_dir: str | Path) -> None:
    """The files and folders cdb writes in a run directory are not links, and each has its kind (a log.jsonl
    that is a folder, a checkpoints/ that is a file): one line naming it, before anything is written."""
    run_dir = Path(run_dir)
    for name, folder in [(f, False) for f in FILES] + [(d, True) for d in FOLDERS]:
        p = run_dir / name
        if p.is_symlink():
            raise _link_line(p, "run files")
        if p.exists() and p.is_dir() != folder:
            kind, want = ("a folder", "a file") if p.is_dir() else ("a file", "a folder")
            raise CdbError(f"{p} is {kind}, where cdb keeps {want}; move it away (or remove that run directory) "
                           "and run the command again")


def logged_something(run_dir: str | Path) -> bool:
    """Whether a run wrote a validation row or a checkpoint: then an interruption never removes its directory."""
    run_dir = Path(run_dir)
    log_file = run_dir / LOG
    return (run_dir / LAST).exists() or (log_file.is_file() and log_file.stat().st_size > 0)


@contextlib.contextmanager
def lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold `<run_dir>/.lock` exclusively; a second holder gets a one-line CdbError naming the directory."""
    run_dir = Path(run_dir)
    path = run_dir / LOCK
    while True:
        try:  # O_NOFOLLOW: a .lock planted as a link is never read nor written through
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if path.is_symlink():
                raise _link_line(path, "its lock") from None
            raise exc
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
    try:
        stale = os.read(fd, 200).decode(errors="replace").strip()
        if stale:  # written by a process that died holding it (a live holder would still hold the flock)
            log.warning("took over the lock of %s from a process that ended without releasing it (%s)", run_dir,
                        stale)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        except OSError as exc:  # a full disk: name the file (a failed write names none)
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        log.debug("holding %s (pid %d)", path, os.getpid())
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)  # closing releases the flock


def remove_orphans(run_dir: Path) -> list[Path]:
    """Delete the temporary files that a kill during an atomic write left in the run directory."""
    from cdb.rundir.io import TMP_GLOB  # cdb.rundir.io imports torch; cdb-run imports this module before any run

    found = [p for d in (run_dir, run_dir / CHECKPOINTS) if d.is_dir() and not d.is_symlink()
             for p in d.glob(TMP_GLOB) if p.is_file() and not p.is_symlink()]
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
def claim(run_dir: str | Path, resume: bool, root: str | Path | None = None) -> Iterator[Claim]:
    """Pre-flight checks and the lock around one run (`root`: the output root it lies under, when known); see the
    module docstring."""
    run_dir = Path(run_dir)
    check_no_links(run_dir, root)
    check_writable(run_dir)
    made = missing_dirs(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_layout(run_dir)
    empty = not any(run_dir.iterdir())
    failed_fresh = False
    try:
        with lock(run_dir):
            fresh = not any(p.name != LOCK for p in run_dir.iterdir())
            if logged_something(run_dir) and not resume:
                raise already_holds_a_run(run_dir)
            remove_orphans(run_dir)
            try:
                yield Claim(run_dir, fresh, (run_dir / METRICS).exists())
            except BaseException:
                if fresh and not logged_something(run_dir):
                    failed_fresh = True
                    _remove_half_made(run_dir)
                raise
    except BaseException:  # the lock itself could not be taken or written (a full disk): nothing of this run is left
        failed_fresh = failed_fresh or (empty and not any(run_dir.iterdir()))
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
