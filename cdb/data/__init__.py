"""Dataset builders: config in, DatasetSplits out. One module per dataset."""
from __future__ import annotations

from typing import Any

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
    """Build the named dataset's splits for `seed` from files under `root`."""
    return resolve(BUILDERS, name, "dataset.name")(root=root, seed=seed, **kwargs)
