"""Batches for training and evaluation.

The order of training samples is a pure function of (seed, step), so a
resumed run sees exactly the batches an uninterrupted one would, with no
sampler state to save. In-memory TensorSplits are sliced, augmented and
normalised a batch at a time; Dataset splits go through a DataLoader.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from ..data.augment import AUGMENTATIONS, normalize
from ..data.base import DatasetSplits, TensorSplit

_ORDER, _AUGMENT = 1_000_003, 2_000_029  # stream offsets so order and augmentation draw unrelated numbers


def _gen(seed: int, stream: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed((int(seed) * 7_919 + stream) * 1_000_000_007 + int(index))


def steps_per_unit(n: int, batch_size: int, unit: str) -> int:
    return math.ceil(n / batch_size) if unit == "epoch" else 1


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
        perm = torch.randperm(n, generator=_gen(seed, _ORDER, p))
        take = perm[offset: offset + need]
        parts.append(take)
        need -= len(take)
        offset, p = 0, p + 1
    return [torch.cat(parts)]


def _on_device(split: TensorSplit, device) -> TensorSplit:
    """The split's tensors on `device`, moved once and cached on the split object."""
    if torch.device(device).type == "cpu":
        return split
    cache = split.__dict__.setdefault("_device_cache", {})
    key = str(device)
    if key not in cache:
        cache[key] = TensorSplit(split.x.to(device, non_blocking=True), split.y.to(device, non_blocking=True))
    return cache[key]


def train_batches(data: DatasetSplits, batches: list[torch.Tensor], device, seed: int, first_step: int,
                  num_workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (inputs, labels) on `device` for the given index batches; step numbers start at first_step."""
    split = data.train
    if isinstance(split, TensorSplit):
        src = _on_device(split, device)
        aug = AUGMENTATIONS[data.augment]
        for i, idx in enumerate(batches):
            idx = idx.to(src.x.device)
            x = src.x[idx]
            if aug is not None:
                x = aug(x, _gen(seed, _AUGMENT, first_step + i))
            yield normalize(x, data.mean, data.std), src.y[idx]
        return
    loader = DataLoader(split, batch_sampler=[b.tolist() for b in batches], num_workers=num_workers,
                        pin_memory=torch.device(device).type == "cuda", persistent_workers=False)
    for x, y in loader:
        yield x.to(device, non_blocking=True), torch.as_tensor(y).to(device, non_blocking=True)


def eval_batches(split: TensorSplit | Dataset, data: DatasetSplits, batch_size: int, device,
                 num_workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(split, TensorSplit):
        src = _on_device(split, device)
        for i in range(0, len(src), batch_size):
            yield normalize(src.x[i: i + batch_size], data.mean, data.std), src.y[i: i + batch_size]
        return
    loader = DataLoader(split, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=torch.device(device).type == "cuda")
    for x, y in loader:
        yield x.to(device, non_blocking=True), torch.as_tensor(y).to(device, non_blocking=True)
