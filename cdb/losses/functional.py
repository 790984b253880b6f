"""Base losses as pure functions: (logits, targets, ...) -> per-sample loss. Weighting is applied elsewhere."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy per sample, -log p_k (paper eq. 6)."""
    return F.cross_entropy(logits.float(), targets, reduction="none")


def reduce_weighted(losses: torch.Tensor, weights: torch.Tensor | None, mode: str = "mean") -> torch.Tensor:
    """Combine per-sample losses with per-sample weights.

    mode="mean": mean_i(w_i * l_i), the plain batch mean of the weighted losses
    (eq. 7 averaged over the batch, as the authors' code does).
    mode="weighted_mean": sum_i(w_i * l_i) / sum_i(w_i), PyTorch's weighted
    cross-entropy reduction; the batch's weight mass cancels out.
    """
    if weights is None:
        return losses.mean()
    wl = weights * losses
    if mode == "mean":
        return wl.mean()
    if mode == "weighted_mean":
        return wl.sum() / weights.sum().clamp_min(torch.finfo(wl.dtype).tiny)
    raise ValueError(f"unknown reduction {mode!r}")
