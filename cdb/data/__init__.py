"""Dataset builders: config in, DatasetSplits out. One module per dataset."""
from __future__ import annotations

from typing import Any

from cdb.core.errors import ConfigError
from cdb.core.registry import resolve
from cdb.data.base import DatasetSplits, TensorSplit  # noqa: F401

BUILDERS = {
    "mnist_imbalanced": "cdb.data.mnist:build_mnist_imbalanced",
    "cifar_lt": "cdb.data.cifar:build_cifar_lt",
    "imagenet_lt": "cdb.data.imagenet_lt:build_imagenet_lt",
    "egtea": "cdb.data.egtea:build_egtea",
    "folder": "cdb.data.folder:build_folder",
}


def build_dataset(name: str, root: str, seed: int, **kwargs: Any) -> DatasetSplits:
    """Build the named dataset's splits for `seed` from files under `root`; a setting its builder does not take
    (`+dataset.majority_ratio=0.9` on cifar_lt) is a one-line ConfigError naming the settings it does take."""
    import inspect

    builder = resolve(BUILDERS, name, "dataset.name")
    params = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        known = sorted(k for k in params if k not in ("root", "seed"))
        for key in kwargs:
            if key not in params:
                raise ConfigError(f"dataset.{key} is not a setting of dataset {name}: its settings are "
                                  f"{', '.join(known)}")
    return builder(root=root, seed=seed, **kwargs)
