"""cdb: Class-wise Difficulty-Balanced loss (Sinha, Ohashi, Nakamura, ACCV 2020) and the experiments around it.

The library (docs/library.md): `from cdb import CDBLoss` for any PyTorch training loop, and the functions it is
made of. They are imported on first use, so `import cdb` stays light (no torch, no Hydra).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "CDBLoss": "cdb.losses.cdb_loss",
    "cdb_weights": "cdb.losses.cdb_loss",
    "dynamic_tau": "cdb.losses.cdb_loss",
    "per_class_counts": "cdb.losses.cdb_loss",
    "per_class_accuracy": "cdb.losses.cdb_loss",
    "FocalLoss": "cdb.losses.modules",
    "ClassBalancedLoss": "cdb.losses.modules",
    "InverseFrequencyLoss": "cdb.losses.modules",
}
__all__ = sorted(_PUBLIC)

if TYPE_CHECKING:
    from cdb.losses.cdb_loss import CDBLoss, cdb_weights, dynamic_tau, per_class_accuracy, per_class_counts
    from cdb.losses.modules import ClassBalancedLoss, FocalLoss, InverseFrequencyLoss


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cdb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
