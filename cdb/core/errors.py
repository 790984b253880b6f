"""Errors a user can act on: the CLI prints them as one line, without a traceback."""
import errno
import os
import signal


class CdbError(Exception):
    """Base class of every error the CLI reports as a single line."""


class ConfigError(CdbError, ValueError):
    """A setting has a value that is not allowed; the message names the setting, the value and what is allowed."""


class DataError(CdbError, FileNotFoundError):
    """Data files are missing or malformed; the message says which file and how to obtain it."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (what a cluster scheduler sends before it stops or requeues a job) or SIGHUP (the terminal closed),
    raised where SIGINT would be. `name` is the signal's, `exit_code` 128 + its number (143, 129), as a shell's."""

    def __init__(self, name: str = "SIGTERM"):
        super().__init__(name)
        self.name, self.exit_code = name, 128 + int(getattr(signal, name, signal.SIGTERM))


class Interrupted(CdbError):
    """Training stopped by Ctrl-C, SIGTERM or SIGHUP; what every run logged is kept. exit_code: 2 for SIGINT (as
    any one-line error), 128 + the signal for the others (143 for SIGTERM, which schedulers read as "terminated")."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def is_number(v) -> bool:
    """A real number (int or float), not a bool or a string: guard comparisons with it (`is_number(v) and v > 0`),
    so that `imbalance=abc` is a one-line ConfigError instead of a TypeError."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_count(v) -> bool:
    """An integer (not a bool)."""
    return isinstance(v, int) and not isinstance(v, bool)


def check(cond: bool, setting: str, value, allowed: str) -> None:
    """Raise ConfigError('<setting>=<value> is not allowed: <allowed>') unless cond holds."""
    if not cond:
        raise ConfigError(f"{setting}={value!r} is not allowed: {allowed}")


DEBUG_ENV = "CDB_DEBUG"


def debug_enabled() -> bool:
    """True when the user asked for tracebacks: CDB_DEBUG=1 (cdb-run also sets it for hydra.verbose=true)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0", "false", "False")


# what each tool advises after a write failed for lack of space: where else to write, how to go on
DISK_ADVICE = {
    "cdb-run": "free space there (or set output_root / CDB_OUTPUT_ROOT elsewhere) and run the command again "
               "(resume=true continues from the last checkpoint, if one was saved)",
    "cdb-decouple": "free space there (or give another --out) and run the command again",
    "cdb-eval": "free space there and run the command again",
}


def user_message(exc: BaseException, prog: str = "cdb-run") -> str | None:
    """The one line to print for an error the user can act on, or None for a bug (which keeps its traceback).

    File-system failures (no permission, disk full, a name too long, a folder where a file belongs) are the user's
    to fix, so they get a line naming the file; `prog`'s advice follows a full disk.
    """
    if isinstance(exc, CdbError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C or a signal before training began (the loop reports its own)
        what = f"terminated ({exc.name})" if isinstance(exc, Terminated) else "interrupted"
        return f"{what}; run the same command again (with resume=true if a checkpoint was saved)"
    if isinstance(exc, PermissionError):
        return (f"cannot write {exc.filename or 'the output directory'}: permission denied; choose a writable "
                "output_root (or CDB_OUTPUT_ROOT)")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return disk_full_message(exc.filename, exc, prog)
    if isinstance(exc, OSError) and exc.errno == errno.ELOOP and exc.filename:  # O_NOFOLLOW met a link
        return f"{exc.filename} is a symbolic link; cdb never writes through a link it did not make: remove it"
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        return (f"cannot make {exc.filename}: a name in that path is longer than the file system allows; use a "
                "shorter name (or fewer settings in the run's folder name)")
    if isinstance(exc, (IsADirectoryError, NotADirectoryError, FileExistsError)) and exc.filename:
        # FileExistsError: a folder could not be made because a file has its name (mkdir -p over a file)
        kind = "a folder where a file belongs" if isinstance(exc, IsADirectoryError) else "a file where a folder belongs"
        return f"{exc.filename}: {kind}; move it away and run the command again"
    return None


def disk_full_message(path, exc: BaseException, prog: str = "cdb-run") -> str:
    """One line for a write that failed for lack of space (or a file-size limit), with `prog`'s advice."""
    reason = getattr(exc, "strerror", None) or "the write failed (disk full or a file-size limit)"
    advice = DISK_ADVICE.get(prog, "free space there (or give another --out) and run the command again")
    return f"could not write {path}: {reason}; {advice}"
