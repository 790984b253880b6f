"""Base losses as pure functions: (logits, targets, ...) -> per-sample loss. Weighting is applied elsewhere.

Losses that shift logits by class priors (LDAM, balanced softmax, logit adjustment) live in prior.py.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cdb.core.errors import check


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy per sample, -log p_k (paper eq. 6)."""
    return F.cross_entropy(logits.float(), targets, reduction="none")


def focal(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Softmax focal loss (Lin et al. 2017): -(1 - p_k)^gamma log p_k. gamma = 0 is cross-entropy.

    No alpha term: class balancing is the weighting's job (e.g. `cb_focal`).
    """
    check(gamma >= 0, "loss.gamma", gamma, "a number >= 0")
    log_p = F.log_softmax(logits.float(), dim=1).gather(1, targets[:, None]).squeeze(1)
    # 1 - p from expm1 keeps precision when p -> 1; the floor keeps the gradient of
    # (1 - p)^gamma finite for gamma < 1 (Cui et al. note NaNs there).
    one_minus_p = (-torch.expm1(log_p)).clamp_min(1e-12)
    return -one_minus_p.pow(gamma) * log_p


def equalization(logits: torch.Tensor, targets: torch.Tensor, class_counts: torch.Tensor,
                 freq_threshold: float = 0.005, gamma: float = 0.9) -> torch.Tensor:
    """Softmax equalization loss (Tan et al. 2020, the image-classification variant).

    p_k = exp(z_k) / sum_j w_j exp(z_j), with w_j = 1 - beta_j * T(f_j) * (1 - y_j):
    T(f_j) = 1 when class j's training frequency f_j = n_j / N is below
    `freq_threshold` (lambda), and beta_j ~ Bernoulli(gamma) is drawn afresh for
    every (sample, class) entry. A dropped rare negative class leaves the
    denominator, so frequent-class samples do not push rare logits down.
    gamma = 0 or a threshold below every frequency gives cross-entropy.
    """
    check(0.0 <= gamma <= 1.0, "loss.gamma", gamma, "a probability in [0, 1]")
    z = logits.float()
    counts = class_counts.to(z.device, torch.float64)
    rare = (counts / counts.sum()) < freq_threshold
    negative = torch.ones_like(z, dtype=torch.bool).scatter_(1, targets[:, None], False)
    drop = rare[None, :] & negative & (torch.rand(z.shape, device=z.device) < gamma)
    return torch.logsumexp(z.masked_fill(drop, float("-inf")), dim=1) - z.gather(1, targets[:, None]).squeeze(1)


def reduce_weighted(losses: torch.Tensor, weights: torch.Tensor | None, mode: str = "mean", dim: int | None = None,
                    denominator: torch.Tensor | float | None = None) -> torch.Tensor:
    """How a step's loss is weighted and reduced: the one place, for one run, a pack's fused batch and DDP.

    Combines per-sample losses with per-sample weights over `dim` (None: the whole batch; 1: each run's row of a
    pack's (runs, batch) tensor).
    mode="mean": mean_i(w_i * l_i), the plain batch mean of the weighted losses
    (eq. 7 averaged over the batch, as the authors' code does).
    mode="weighted_mean": sum_i(w_i * l_i) / sum_i(w_i), PyTorch's weighted
    cross-entropy reduction; the batch's weight mass cancels out.
    mode="sum": sum_i(w_i * l_i), for weights that are already normalised over
    the batch (L2RW and Meta-Weight-Net weights sum to 1) or meant to be summed (Ren et al.'s class ratios).
    denominator: a batch sharded over processes (DDP) divides its local weighted sum by the global batch size or
    weight mass instead (cdb.train.distributed.Dist.reduce_loss says which, for the mode).
    """
    wl = losses if weights is None else weights * losses
    if denominator is not None:
        return wl.sum(dim) / denominator
    if mode == "sum":
        return wl.sum(dim)
    if mode == "mean" or weights is None:
        return wl.mean(dim)
    if mode == "weighted_mean":
        return wl.sum(dim) / weights.sum(dim).clamp_min(torch.finfo(wl.dtype).tiny)
    raise ValueError(f"unknown reduction {mode!r}")
