"""Dataset builders: config in, DatasetSplits out. One module per dataset."""
from __future__ import annotations

import inspect
from typing import Any

from cdb.core.errors import ConfigError, check
from cdb.data.base import DatasetSplits, TensorSplit  # noqa: F401
from cdb.data.cifar import build_cifar_lt
from cdb.data.egtea import build_egtea
from cdb.data.folder import build_folder
from cdb.data.imagenet_lt import build_imagenet_lt
from cdb.data.mnist import build_mnist_imbalanced

BUILDERS = {"mnist_imbalanced": build_mnist_imbalanced, "cifar_lt": build_cifar_lt, "imagenet_lt": build_imagenet_lt,
            "egtea": build_egtea, "folder": build_folder}


def build_dataset(name: str, root: str, seed: int, **kwargs: Any) -> DatasetSplits:
    """Build the named dataset's splits for `seed` from files under `root`; a setting its builder does not take
    (`+dataset.majority_ratio=0.9` on cifar_lt) is a one-line ConfigError naming the settings it does take."""
    check(name in BUILDERS, "dataset.name", name, f"one of {sorted(BUILDERS)}")
    builder = BUILDERS[name]
    params = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        known = sorted(k for k in params if k not in ("root", "seed"))
        for key in kwargs:
            if key not in params:
                raise ConfigError(f"dataset.{key} is not a setting of dataset {name}: its settings are "
                                  f"{', '.join(known)}")
    return builder(root=root, seed=seed, **kwargs)
