"""Errors a user can act on: the CLI prints them as one line, without a traceback."""


class CdbError(Exception):
    """Base class of every error the CLI reports as a single line."""


class ConfigError(CdbError, ValueError):
    """A setting has a value that is not allowed; the message names the setting, the value and what is allowed."""


class DataError(CdbError, FileNotFoundError):
    """Data files are missing or malformed; the message says which file and how to obtain it."""


def check(cond: bool, setting: str, value, allowed: str) -> None:
    """Raise ConfigError('<setting>=<value> is not allowed: <allowed>') unless cond holds."""
    if not cond:
        raise ConfigError(f"{setting}={value!r} is not allowed: {allowed}")


DEBUG_ENV = "CDB_DEBUG"


def debug_enabled() -> bool:
    """True when the user asked for tracebacks: CDB_DEBUG=1 (cdb-run also sets it for hydra.verbose=true)."""
    import os

    return os.environ.get(DEBUG_ENV, "") not in ("", "0", "false", "False")


def user_message(exc: BaseException) -> str | None:
    """The one line to print for an error the user can act on, or None for a bug (which keeps its traceback).

    File-system failures (no permission, disk full) are the user's to fix, so they get a line naming the file.
    """
    import errno

    if isinstance(exc, CdbError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C before training began (the loop reports its own)
        return "interrupted; run the same command again (with resume=true if a checkpoint was saved)"
    if isinstance(exc, PermissionError):
        return (f"cannot write {exc.filename or 'the output directory'}: permission denied; choose a writable "
                "output_root (or CDB_OUTPUT_ROOT)")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return disk_full_message(exc.filename, exc)
    return None


def disk_full_message(path, exc: BaseException) -> str:
    """One line for a write that failed for lack of space (or a file-size limit)."""
    reason = getattr(exc, "strerror", None) or "the write failed (disk full or a file-size limit)"
    return (f"could not write {path}: {reason}; free space there (or set output_root / CDB_OUTPUT_ROOT elsewhere) "
            "and run the command again (resume=true continues from the last checkpoint, if one was saved)")
