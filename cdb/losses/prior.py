"""Base losses that shift logits by class-count priors: LDAM margins, balanced softmax, logit adjustment.

Each is cross-entropy on adjusted logits, so each reduces to plain CE when its adjustment is zero.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cdb.core.errors import check


def _counts(class_counts: torch.Tensor, device) -> torch.Tensor:
    # A class with no training image never occurs as a target; counting it as 1
    # keeps its log-prior and margin finite instead of -inf / inf.
    return class_counts.to(device, torch.float32).clamp_min(1.0)


def ldam_margins(class_counts: torch.Tensor, max_margin: float = 0.5) -> torch.Tensor:
    """LDAM margins (Cao et al. 2019): m_c proportional to n_c^(-1/4), the rarest class at `max_margin`."""
    m = _counts(class_counts, "cpu").pow(-0.25)
    return m * (max_margin / m.max())


def ldam(logits: torch.Tensor, targets: torch.Tensor, class_counts: torch.Tensor, max_margin: float = 0.5,
         scale: float = 30.0) -> torch.Tensor:
    """Label-distribution-aware margin loss: CE(s * (z - m_y e_y), y) (Cao et al. 2019, eq. 13).

    Cao et al. use s = 30 on cosine logits: loss=ldam_drw selects the cosine head (`loss.head: cosine`,
    cdb/models/heads.py). max_margin = 0 and scale = 1 give plain CE.
    """
    check(max_margin >= 0, "loss.max_margin", max_margin, "a number >= 0")
    check(scale > 0, "loss.scale", scale, "a number > 0")
    z = logits.float()
    m = ldam_margins(class_counts, max_margin).to(z.device)
    shifted = z - F.one_hot(targets, z.shape[1]).to(z.dtype) * m[targets][:, None]
    return F.cross_entropy(scale * shifted, targets, reduction="none")


def balanced_softmax(logits: torch.Tensor, targets: torch.Tensor, class_counts: torch.Tensor) -> torch.Tensor:
    """Balanced softmax (Ren et al. 2020): CE(z + log n_c), the softmax re-weighted by the training class counts."""
    z = logits.float()
    return F.cross_entropy(z + _counts(class_counts, z.device).log()[None, :], targets, reduction="none")


def logit_adjust(logits: torch.Tensor, targets: torch.Tensor, class_counts: torch.Tensor,
                 adjust_tau: float = 1.0) -> torch.Tensor:
    """Logit-adjusted loss (Menon et al. 2021, eq. 10): CE(z + tau log pi_c), pi_c = n_c / N.

    adjust_tau is Menon et al.'s tau (1 by default; 0 is plain CE). With tau = 1
    it equals balanced softmax (log N is a constant shift).
    """
    z = logits.float()
    n = _counts(class_counts, z.device)
    return F.cross_entropy(z + adjust_tau * (n / n.sum()).log()[None, :], targets, reduction="none")
