"""Batches for training and evaluation.

The order of training samples is a pure function of (seed, step), so a
resumed run sees exactly the batches an uninterrupted one would, with no
sampler state to save. In-memory TensorSplits are sliced, augmented and
normalised a batch at a time; Dataset splits go through a DataLoader.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from cdb.data.augment import AUGMENTATIONS, normalize
from cdb.data.base import DatasetSplits, TensorSplit

_ORDER, _AUGMENT = 1_000_003, 2_000_029  # stream offsets so order and augmentation draw unrelated numbers


def _gen(seed: int, stream: int, index: int) -> torch.Generator:
    # modulo 2**64 (torch's seed range): unchanged for every seed below ~10**6, and no overflow for any seed
    return torch.Generator().manual_seed(((int(seed) * 7_919 + stream) * 1_000_000_007 + int(index)) % 2**64)


def steps_per_unit(n: int, batch_size: int, unit: str) -> int:
    return math.ceil(n / batch_size) if unit == "epoch" else 1


@functools.lru_cache(maxsize=64)  # a few passes for each of up to ~30 batched seeds
def _pass_order(n: int, seed: int, p: int) -> torch.Tensor:
    """Order of pass p of the step stream, kept for the ~n/batch_size steps that slice it (callers only slice)."""
    return torch.randperm(n, generator=_gen(seed, _ORDER, p))


def unit_batches(n: int, batch_size: int, unit: str, u: int, seed: int) -> list[torch.Tensor]:
    """Index tensors of the batches of unit `u`.

    unit="epoch": one shuffled pass (the last batch may be smaller).
    unit="step": one batch of exactly batch_size from an endless stream of
    shuffled passes, as in Ren et al.'s step-counted MNIST training.
    """
    if unit == "epoch":
        perm = torch.randperm(n, generator=_gen(seed, _ORDER, u))
        return list(torch.split(perm, batch_size))
    start = u * batch_size
    p0 = start // n
    parts, need, offset, p = [], batch_size, start - p0 * n, p0
    while need > 0:
        perm = _pass_order(n, seed, p)
        take = perm[offset: offset + need]
        parts.append(take)
        need -= len(take)
        offset, p = 0, p + 1
    return [torch.cat(parts)]


@dataclass(frozen=True)
class Shard:
    """One data-parallel rank's rows [lo, hi) of a global batch (`index` is the whole global batch)."""

    index: torch.Tensor
    lo: int
    hi: int

    @property
    def total(self) -> int:
        return len(self.index)

    @property
    def local(self) -> torch.Tensor:
        return self.index[self.lo: self.hi]


def _on_device(split: TensorSplit, device, keep: bool = True) -> TensorSplit:
    """The split's tensors on `device`, moved once and cached on the split object (keep=False: left where they are)."""
    if torch.device(device).type == "cpu" or not keep:
        return split
    cache = split.__dict__.setdefault("_device_cache", {})
    key = str(device)
    if key not in cache:
        cache[key] = TensorSplit(split.x.to(device, non_blocking=True), split.y.to(device, non_blocking=True))
    return cache[key]


def _to(idx: torch.Tensor, device) -> torch.Tensor:
    """An index tensor onto `device` without making the host wait for the GPU (pinned, asynchronous copy)."""
    if torch.device(device).type != "cuda":
        return idx
    return idx.pin_memory().to(device, non_blocking=True)


def train_batches(data: DatasetSplits, batches: list[torch.Tensor | Shard], device, seed: int, first_step: int,
                  num_workers: int = 0, on_device: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (inputs, labels) on `device` for the given index batches; step numbers start at first_step.

    A Shard yields only its rows, but a batched augmentation runs on the
    whole global batch first, so every rank's rows get exactly the crops and
    flips that one process would give them. on_device=False keeps an
    in-memory split in host memory and moves each (uint8) batch instead.
    """
    split = data.train
    if isinstance(split, TensorSplit):
        src = _on_device(split, device, on_device)
        aug = AUGMENTATIONS[data.augment]
        for i, b in enumerate(batches):
            idx, lo, hi = (b.index, b.lo, b.hi) if isinstance(b, Shard) else (b, 0, len(b))
            idx = _to(idx, src.x.device)
            if aug is None:
                x = src.x[idx[lo:hi]].to(device, non_blocking=True)
            else:
                x = aug(src.x[idx].to(device, non_blocking=True), _gen(seed, _AUGMENT, first_step + i))[lo:hi]
            yield normalize(x, data.mean, data.std), src.y[idx[lo:hi]].to(device, non_blocking=True)
        return
    loader = DataLoader(split, batch_sampler=[(b.local if isinstance(b, Shard) else b).tolist() for b in batches],
                        num_workers=num_workers,
                        pin_memory=torch.device(device).type == "cuda", persistent_workers=False)
    for x, y in loader:
        yield x.to(device, non_blocking=True), torch.as_tensor(y).to(device, non_blocking=True)


def eval_batches(split: TensorSplit | Dataset, data: DatasetSplits, batch_size: int, device,
                 num_workers: int = 0, on_device: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(split, TensorSplit):
        src = _on_device(split, device, on_device)
        for i in range(0, len(src), batch_size):
            x = src.x[i: i + batch_size].to(device, non_blocking=True)
            yield normalize(x, data.mean, data.std), src.y[i: i + batch_size].to(device, non_blocking=True)
        return
    loader = DataLoader(split, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=torch.device(device).type == "cuda")
    for x, y in loader:
        yield x.to(device, non_blocking=True), torch.as_tensor(y).to(device, non_blocking=True)
