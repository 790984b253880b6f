"""Dataset builders: config in, DatasetSplits out. One module per dataset."""
from __future__ import annotations

from typing import Any

from ..registry import resolve
from .base import DatasetSplits, TensorSplit  # noqa: F401

BUILDERS = {
    "mnist_imbalanced": "cdb.data.mnist:build_mnist_imbalanced",
}


def build_dataset(name: str, root: str, seed: int, **kwargs: Any) -> DatasetSplits:
    """Build the named dataset's splits for `seed` from files under `root`."""
    return resolve(BUILDERS, name, "dataset.name")(root=root, seed=seed, **kwargs)
