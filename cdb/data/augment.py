"""Batched transforms for in-memory uint8 tensors: normalise and augment a whole batch at once."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 standardised with per-channel mean/std given in [0, 1] units."""
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return (x.float().div_(255.0) - m) / s


def crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding by `pad`, and random horizontal flip, for a uint8 batch in one gather.

    Pads the raw image with black before normalising, as torchvision's
    RandomCrop(32, padding=4) followed by Normalize does.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).to(x.device)
    cols = torch.arange(w).view(1, w).expand(n, w)
    cols = torch.where(flip.view(n, 1), w - 1 - cols, cols)
    cols = (cols + dx.view(n, 1)).to(x.device)
    idx_r = rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * pad)
    out = padded.gather(2, idx_r)
    idx_c = cols.view(n, 1, 1, w).expand(n, c, h, w)
    return out.gather(3, idx_c)


AUGMENTATIONS = {"none": None, "crop_flip": crop_flip}
