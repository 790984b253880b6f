"""The static baselines as nn.Modules for any training loop, from the same functions `cdb-run` uses: focal loss,
class-balanced (effective-number) weights and inverse-frequency weights (docs/library.md). CDB-CE is
cdb.losses.cdb_loss.CDBLoss.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from cdb.core.errors import check
from cdb.losses.cdb_loss import REDUCTIONS
from cdb.losses.functional import cross_entropy, focal, reduce_weighted
from cdb.losses.static import effective_number_weights, inverse_frequency_weights


class _ClassWeightedLoss(nn.Module):
    """CE (gamma 0) or focal loss (gamma > 0) of each sample times a fixed weight of its class (a buffer)."""

    weights: torch.Tensor

    def __init__(self, weights: torch.Tensor | None, num_classes: int, gamma: float, reduction: str):
        super().__init__()
        check(gamma >= 0, "gamma", gamma, "a number >= 0")
        check(reduction in REDUCTIONS, "reduction", reduction, f"one of {', '.join(REDUCTIONS)}")
        self.gamma, self.reduction = float(gamma), reduction
        self.register_buffer("weights", torch.ones(num_classes) if weights is None else weights.float())

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        losses = focal(logits, targets, self.gamma) if self.gamma > 0 else cross_entropy(logits, targets)
        w = self.weights[targets]
        return w * losses if self.reduction == "none" else reduce_weighted(losses, w, self.reduction)

    def extra_repr(self) -> str:
        return f"num_classes={len(self.weights)}, gamma={self.gamma:g}, reduction='{self.reduction}'"


class FocalLoss(_ClassWeightedLoss):
    """Softmax focal loss (Lin et al. 2017), -(1 - p_k)^gamma log p_k, no alpha term; gamma 0 is CE."""

    def __init__(self, num_classes: int, gamma: float = 2.0, reduction: str = "mean"):
        super().__init__(None, num_classes, gamma, reduction)


class ClassBalancedLoss(_ClassWeightedLoss):
    """Class-balanced loss (Cui et al. 2019): weights (1 - beta) / (1 - beta^n_c) from the training class counts,
    rescaled to mean 1, on CE (gamma 0) or focal loss (gamma > 0)."""

    def __init__(self, class_counts: Sequence[int] | torch.Tensor, beta: float = 0.9999, gamma: float = 0.0,
                 reduction: str = "mean"):
        check(0.0 <= beta < 1.0, "beta", beta, "a number in [0, 1)")
        counts = torch.as_tensor(class_counts)
        super().__init__(effective_number_weights(counts, beta), len(counts), gamma, reduction)


class InverseFrequencyLoss(_ClassWeightedLoss):
    """Inverse-frequency weighted CE (IFW): weights proportional to 1 / n_c, rescaled to mean 1."""

    def __init__(self, class_counts: Sequence[int] | torch.Tensor, reduction: str = "mean"):
        counts = torch.as_tensor(class_counts)
        super().__init__(inverse_frequency_weights(counts), len(counts), 0.0, reduction)
