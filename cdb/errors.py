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
