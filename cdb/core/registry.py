"""Name -> 'module:attribute' tables, imported lazily so that a run pays only for what it uses."""
from __future__ import annotations

import importlib
from typing import Any

from cdb.core.errors import ConfigError


def resolve(table: dict[str, str], name: str, setting: str) -> Any:
    """Import and return the object registered under `name`, or raise a ConfigError naming the choices."""
    if name not in table:
        raise ConfigError(f"{setting}={name!r} is not allowed: one of {sorted(table)}")
    module, attr = table[name].split(":")
    return getattr(importlib.import_module(module), attr)
