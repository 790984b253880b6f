"""Static weightings: class weights fixed by the training class counts (IFW, class-balanced, deferred CB).

All of them rescale the weights to sum C (mean 1 over classes), as Cui et al.
do, so that a balanced dataset gets weight 1 everywhere and the loss scale
stays comparable to unweighted CE.
"""
from __future__ import annotations

import torch

from cdb.core.errors import check
from cdb.losses.weighting import Weighting


def _to_mean_one(w: torch.Tensor) -> torch.Tensor:
    return (w * (len(w) / w.sum())).float()


def _counts(class_counts: torch.Tensor) -> torch.Tensor:
    # a class with no training image never occurs as a target; count it as 1 so its weight stays finite
    return torch.as_tensor(class_counts, dtype=torch.float64).clamp_min(1.0)


def inverse_frequency_weights(class_counts: torch.Tensor) -> torch.Tensor:
    """w_c proportional to 1 / n_c, rescaled to mean 1 over classes."""
    return _to_mean_one(1.0 / _counts(class_counts))


def effective_number_weights(class_counts: torch.Tensor, beta: float) -> torch.Tensor:
    """Class-balanced weights (Cui et al. 2019): (1 - beta) / (1 - beta^n_c), rescaled to sum C.

    beta = 0 gives uniform weights; beta -> 1 approaches inverse frequency.
    """
    n = _counts(class_counts)
    return _to_mean_one((1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), n)))


def _check_counts(class_counts, setting: str) -> None:
    check(class_counts is not None, setting, None, "needs the training class counts (the dataset provides them)")


def class_ratio_weights(class_counts: torch.Tensor) -> torch.Tensor:
    """Ren et al.'s class-ratio weights for two classes: each class weighs the other's share of the training set
    (minority r, majority 1 - r at majority ratio r), not rescaled; their loss sums them over the batch."""
    n = _counts(class_counts)
    return (1.0 - n / n.sum()).float()


IFW_SCALES = ("mean_one", "ratio")


class InverseFrequency(Weighting):
    """IFW: inverse class-frequency weights (paper's Table 1 baseline [23]).

    scale: "mean_one" (proportional to 1 / n_c, mean 1 over classes) or "ratio" (two classes only: Ren et
    al.'s class-ratio weights, r and 1 - r, which their code sums over the batch: use with reduction sum).
    """

    def __init__(self, num_classes: int, class_counts: torch.Tensor, scale: str = "mean_one"):
        super().__init__(num_classes, class_counts)
        _check_counts(class_counts, "loss.weighting=ifw")
        check(scale in IFW_SCALES, "loss.scale", scale, " or ".join(IFW_SCALES))
        check(scale != "ratio" or num_classes == 2, "loss.scale", scale, "mean_one (ratio is for two classes)")
        self.weights = inverse_frequency_weights(class_counts) if scale == "mean_one" else class_ratio_weights(class_counts)


class ClassBalanced(Weighting):
    """CB: effective-number weights (Cui et al. 2019) with their default beta 0.9999."""

    def __init__(self, num_classes: int, class_counts: torch.Tensor, beta: float = 0.9999):
        super().__init__(num_classes, class_counts)
        _check_counts(class_counts, "loss.weighting=cb")
        check(0.0 <= beta < 1.0, "loss.beta", beta, "a number in [0, 1)")
        self.weights = effective_number_weights(class_counts, beta)


class DeferredReweighting(Weighting):
    """DRW (Cao et al. 2019): uniform weights, then class-balanced weights from unit `drw_start` on.

    The switch happens at the first validation whose unit count is >= drw_start
    (trainer units: epochs or steps), so choose eval_every to divide drw_start;
    Cao et al. switch at epoch 160 of 200 with beta 0.9999.
    """

    def __init__(self, num_classes: int, class_counts: torch.Tensor, drw_start: int = 160, beta: float = 0.9999):
        super().__init__(num_classes, class_counts)
        _check_counts(class_counts, "loss.weighting=drw")
        check(int(drw_start) == drw_start and drw_start >= 0, "loss.drw_start", drw_start, "an integer >= 0")
        check(0.0 <= beta < 1.0, "loss.beta", beta, "a number in [0, 1)")
        self.drw_start, self.beta = int(drw_start), beta
        self.active = self.drw_start == 0
        if self.active:
            self.weights = effective_number_weights(class_counts, beta)

    def update(self, unit: int, val_class_acc: torch.Tensor, val_support: torch.Tensor | None = None) -> dict:
        note = ""
        if not self.active and unit >= self.drw_start:
            self.active = True
            self.weights = effective_number_weights(self.class_counts, self.beta)
            note = f"DRW: class-balanced weights (beta {self.beta}) from unit {unit} on"
        return {"weights": self.weights.tolist(), "note": note}

    def state_dict(self) -> dict:
        return {"weights": self.weights.clone(), "active": self.active}

    def load_state_dict(self, state: dict) -> None:
        self.weights, self.active = state["weights"].clone(), bool(state["active"])
