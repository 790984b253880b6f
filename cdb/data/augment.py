"""Batched transforms for in-memory uint8 tensors: normalise and augment a whole batch at once.

Nothing here makes the host wait for a GPU: the per-channel statistics are moved to a device once (cached), and the
random crop offsets drawn on the host go over in one asynchronous copy from pinned memory.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


def to_device(t: torch.Tensor, device) -> torch.Tensor:
    """A host tensor onto `device` without making the host wait for the GPU (pinned, asynchronous copy)."""
    device = torch.device(device)
    if t.device == device or (device.type == "cpu" and t.device.type == "cpu"):
        return t
    if device.type != "cuda" or t.device.type == "cuda":
        return t.to(device)  # no host-device copy
    return t.pin_memory().to(device, non_blocking=True)


@functools.lru_cache(maxsize=256)
def channel_stats(mean: tuple, std: tuple, device: str, dims: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) as float32 tensors of shape (1, C, 1, 1) (or (..., C, 1, 1) with `dims` dimensions) on `device`,
    made once per (statistics, device): a step reuses them instead of copying two small tensors to the device."""
    shape = (1,) * (dims - 3) + (-1, 1, 1)
    m = torch.tensor(mean, dtype=torch.float32).view(shape)
    s = torch.tensor(std, dtype=torch.float32).view(shape)
    return to_device(m, device), to_device(s, device)


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (..., C, H, W) -> float32 standardised with per-channel mean/std given in [0, 1] units.

    mean and std: sequences of C numbers, or tensors that broadcast against x (e.g. (K, 1, C, 1, 1) for the
    batches of K runs stacked, each with its own statistics)."""
    if isinstance(mean, torch.Tensor):
        m, s = mean, std
    else:
        m, s = channel_stats(tuple(float(v) for v in mean), tuple(float(v) for v in std), str(x.device), x.dim())
    return (x.float().div_(255.0) - m) / s


def _draw(n: int, gen: torch.Generator, pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    return dy, dx, flip


def _crop_flip(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, pad: int) -> torch.Tensor:
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = dy.view(n, 1) + torch.arange(h).view(1, h)
    cols = torch.arange(w).view(1, w).expand(n, w)
    cols = torch.where(flip.view(n, 1), w - 1 - cols, cols)
    cols = cols + dx.view(n, 1)
    both = to_device(torch.cat([rows.reshape(-1), cols.reshape(-1)]), x.device)  # one copy to the device
    rows, cols = both[: n * h], both[n * h:]
    idx_r = rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * pad)
    out = padded.gather(2, idx_r)
    idx_c = cols.view(n, 1, 1, w).expand(n, c, h, w)
    return out.gather(3, idx_c)


def crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding by `pad`, and random horizontal flip, for a uint8 batch in one gather.

    Pads the raw image with black before normalising, as torchvision's
    RandomCrop(32, padding=4) followed by Normalize does.
    """
    return _crop_flip(x, *_draw(len(x), gen, pad), pad)


def crop_flip_runs(x: torch.Tensor, gens: list[torch.Generator], pad: int = 4) -> torch.Tensor:
    """crop_flip of K runs' batches stacked (K, n, C, H, W), run k's offsets drawn from gens[k]: exactly what
    crop_flip gives each run's batch alone, with one copy of the offsets to the device."""
    k, n = x.shape[:2]
    draws = [_draw(n, g, pad) for g in gens]
    dy, dx, flip = (torch.cat(parts) for parts in zip(*draws))
    return _crop_flip(x.flatten(0, 1), dy, dx, flip, pad).view(x.shape)


AUGMENTATIONS = {"none": None, "crop_flip": crop_flip}
RUN_AUGMENTATIONS = {"none": None, "crop_flip": crop_flip_runs}  # the same on K runs' batches stacked
