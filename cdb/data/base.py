"""What every dataset builder returns: three splits plus the facts the loss and the tables need."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import Dataset


# info entries kept for audits and tests but too bulky for data.json (MNIST: thousands of indices)
AUDIT_KEYS = frozenset({"train_indices", "files"})


@dataclass
class TensorSplit:
    """A split held in memory: uint8 images (N, C, H, W) and int64 labels (N,).

    Small datasets (MNIST, CIFAR) live as tensors so that batches are sliced,
    normalised and augmented in bulk instead of sample by sample.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self):
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"images ({self.x.shape[0]}) and labels ({self.y.shape[0]}) differ in length")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def targets(self) -> torch.Tensor:
        return self.y


@dataclass
class DatasetSplits:
    """Train / validation / test splits of one dataset, as built for one seed.

    train, val and test are either TensorSplit (in-memory, batched transforms)
    or a torch Dataset whose items are (input tensor, label) and which exposes
    `targets` (a 1-D int tensor or list of labels).
    `mean`/`std` normalise uint8 tensors (per channel, in [0, 1] units);
    `augment` names the batched augmentation for TensorSplit training batches.
    """

    name: str
    train: TensorSplit | Dataset
    val: TensorSplit | Dataset
    test: TensorSplit | Dataset
    num_classes: int
    class_names: list[str]
    input_shape: tuple[int, ...]
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    augment: str = "none"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def class_counts(self) -> torch.Tensor:
        """Training images per class (int64, length num_classes)."""
        return class_counts(self.train, self.num_classes)

    def summary(self) -> dict[str, Any]:
        """What data.json records: sizes, class counts and the builder's facts (not its index lists)."""
        return {
            "dataset": self.name,
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "train": len(self.train),
            "val": len(self.val),
            "test": len(self.test),
            "train_class_counts": self.class_counts.tolist(),
            **{k: v for k, v in self.info.items() if k not in AUDIT_KEYS},
        }


def fingerprint(data: DatasetSplits) -> str:
    """A digest of the splits a run trains, validates and tests on: each split's labels and its images (the pixels
    of an in-memory split, the file names of one read from disk). A resumed run compares it with its checkpoint's,
    so that data changed under it (another CDB_DATA_ROOT, relabelled files) is refused rather than trained on."""
    h = hashlib.blake2b(digest_size=16)
    for split in (data.train, data.val, data.test):
        h.update(f"{len(split)};".encode())
        h.update(targets_of(split).to("cpu", torch.int64).numpy().tobytes())
        if isinstance(split, TensorSplit):
            h.update(split.x.cpu().contiguous().numpy().tobytes())
        else:
            h.update("\n".join(map(str, getattr(split, "paths", []))).encode())
    return h.hexdigest()


def targets_of(split) -> torch.Tensor:
    t = split.targets
    return t if isinstance(t, torch.Tensor) else torch.as_tensor(list(t), dtype=torch.long)


def class_counts(split, num_classes: int) -> torch.Tensor:
    return torch.bincount(targets_of(split), minlength=num_classes)
