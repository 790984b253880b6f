"""Weighting strategies: each owns the class (or sample) weights and how they change.

The trainer calls `sample_weights(targets, ctx)` every step and
`update(unit, val_class_acc)` after every validation (unit: the trainer units done so far); it never asks which
strategy it runs. Static strategies derive weights from class counts, dynamic
ones (CDB) from validation, meta ones from a meta step on validation data.
"""
from __future__ import annotations

import logging
import math

import torch

from cdb.core.errors import ConfigError, check

log = logging.getLogger(__name__)


class Weighting:
    """Uniform weights (plain, unweighted loss). Base class of every strategy."""

    def __init__(self, num_classes: int, class_counts: torch.Tensor | None = None):
        self.num_classes = num_classes
        self.class_counts = class_counts
        self.weights = torch.ones(num_classes)

    @property
    def weights(self) -> torch.Tensor:
        return self._weights

    @weights.setter
    def weights(self, w: torch.Tensor) -> None:
        # Decided here, when the weights change (at a validation), not in every step: a check on the tensor's
        # values inside a step would make the host wait for the device (tests/unit/train/test_pack_training.py counts that).
        self._weights, self._uniform, self._on = w, bool(torch.all(w == 1)), {}

    def class_weights(self) -> torch.Tensor:
        return self.weights

    def sample_weights(self, targets: torch.Tensor, ctx=None) -> torch.Tensor | None:
        """Per-sample weights for a batch; None means unweighted."""
        if self._uniform:
            return None
        dev = targets.device
        if dev not in self._on:  # one copy per device per weight update, not one per step
            self._on[dev] = self._weights.to(dev)
        return self._on[dev][targets]

    def update(self, unit: int, val_class_acc: torch.Tensor, val_support: torch.Tensor | None = None) -> dict:
        """Called after every validation with class-wise accuracy (and validation images per class, when known);
        returns what to log (weights, tau, notes)."""
        return {"weights": self.weights.tolist()}

    def state_dict(self) -> dict:
        return {"weights": self.weights.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.weights = state["weights"].clone()


def dynamic_tau(acc: torch.Tensor, rule: str = "paper", eps: float | None = None) -> float:
    """tau from class-wise validation accuracies (of the classes that have validation images).

    paper (eq. 3-4): tau = 2 / (1 + exp(-b)), b = max A / (min A + eps) - 1, eps = 1e-4.
    authors_sigmoid (authors' CIFAR/EGTEA code): tau = sigmoid(max A / (min A + 0.01)).
    authors_2sigmoid (authors' ImageNet-LT code): tau = 2 sigmoid(max A / (min A + 0.01) - 1).
    """
    a_max, a_min = float(acc.max()), float(acc.min())
    if rule == "paper":
        b = a_max / (a_min + (1e-4 if eps is None else eps)) - 1.0
        return 2.0 / (1.0 + math.exp(-b))
    if rule == "authors_sigmoid":
        return 1.0 / (1.0 + math.exp(-a_max / (a_min + (0.01 if eps is None else eps))))
    if rule == "authors_2sigmoid":
        b = a_max / (a_min + (0.01 if eps is None else eps)) - 1.0
        return 2.0 / (1.0 + math.exp(-b))
    raise ConfigError(f"loss.tau_rule={rule!r} is not allowed: one of paper, authors_sigmoid, authors_2sigmoid")


NORMALIZE = ("none", "mean")  # loss.normalize, checked by CDBWeighting (the one place for a weighting's options)


def cdb_weights(acc: torch.Tensor, tau: float, normalize: str = "mean", floor: float = 0.0,
                min_weight: float = 0.0, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, str]:
    """w_c = (1 - A_c)^tau (paper eq. 2), with optional lower bounds and normalisation.

    tau = 0 gives ones (0^0 = 1, plain CE). floor bounds the difficulty, d_c >= floor; min_weight bounds
    the weight relative to the largest one, w_c >= min_weight * max w (scale-free, so it holds for any tau).
    normalize: "mean" (rescale to sum C, mean 1: the authors' code) or "none" (eq. 2 as written).

    valid marks the classes with validation images; the others have no accuracy and get the neutral weight,
    the mean weight of the valid classes (1 after normalisation), instead of the largest.
    If every valid weight is 0 (every class at 100% validation accuracy, tau > 0) eq. 2 is 0/0 after
    normalisation; the weights take the limit of equal difficulties d -> 0, which is continuous with the
    neighbouring cases: uniform (all 1) under "mean", all 0 under "none" (eq. 2 itself tends to 0 there).
    The returned note says when a fallback was taken.
    """
    acc = acc.double()
    valid = torch.ones_like(acc, dtype=torch.bool) if valid is None else valid.bool()
    if not bool(valid.any()):
        return torch.ones_like(acc).float(), "no class has validation images: uniform weights"
    d = (1.0 - acc[valid]).clamp(min=floor, max=1.0)
    w_valid = torch.pow(d, tau)  # torch.pow(0, 0) == 1
    if min_weight > 0:
        w_valid = torch.maximum(w_valid, min_weight * w_valid.max())
    note = ""
    if float(w_valid.sum()) <= 0.0:
        fill = 1.0 if normalize == "mean" else 0.0
        note = ("every class at 100% validation accuracy: weights " +
                ("uniform (the limit of equal difficulties under mean normalisation)" if fill else
                 "0 (eq. 2's limit without normalisation)"))
        return torch.full_like(acc, fill).float(), note
    w = torch.full_like(acc, float(w_valid.mean()))
    w[valid] = w_valid
    if not bool(valid.all()):
        note = f"{int((~valid).sum())} class(es) without validation images keep the neutral (mean) weight"
    if normalize == "mean":
        w = w * (len(w) / w.sum())
    return w.float(), note


class CDBWeighting(Weighting):
    """Class-wise difficulty-balanced weights (paper sec. 3), recomputed after every validation.

    Before the first update all weights are 1 (plain CE). Options beyond the
    paper, each off by default: `floor` (lower bound on difficulty, so that no
    class ever gets weight 0), `ema` (exponential smoothing of the class-wise
    accuracies across updates: A <- ema * A_prev + (1 - ema) * A_new), `warmup` (number of validations
    that keep plain CE before CDB starts), and `min_weight` (each class weight at least this fraction of
    the largest).
    """

    def __init__(self, num_classes: int, class_counts=None, tau="dynamic", tau_rule: str = "paper",
                 eps: float | None = None, normalize: str = "mean", floor: float = 0.0, ema: float = 0.0,
                 warmup: int = 0, min_weight: float = 0.0):
        super().__init__(num_classes, class_counts)
        self.dynamic = isinstance(tau, str)
        if self.dynamic:
            check(tau == "dynamic", "loss.tau", tau, "a number >= 0 or 'dynamic'")
            dynamic_tau(torch.tensor([1.0, 0.5]), tau_rule, eps)  # validates the rule name early
        else:
            check(isinstance(tau, (int, float)) and math.isfinite(tau) and tau >= 0, "loss.tau", tau,
                  "a number >= 0 or 'dynamic'")
        check(normalize in NORMALIZE, "loss.normalize", normalize, "one of none, mean")
        check(0.0 <= floor < 1.0, "loss.floor", floor, "a number in [0, 1)")
        check(0.0 <= ema < 1.0, "loss.ema", ema, "a number in [0, 1)")
        check(int(warmup) == warmup and warmup >= 0, "loss.warmup", warmup, "an integer >= 0")
        check(0.0 <= min_weight <= 1.0, "loss.min_weight", min_weight, "a number in [0, 1]")
        self.min_weight = float(min_weight)
        self.tau, self.tau_rule, self.eps = tau, tau_rule, eps
        self.normalize, self.floor, self.ema, self.warmup = normalize, floor, ema, int(warmup)
        self.current_tau = 0.0 if self.dynamic else float(tau)
        self.smoothed: torch.Tensor | None = None
        self.updates = 0
        self._warned_missing = False

    def update(self, unit: int, val_class_acc: torch.Tensor, val_support: torch.Tensor | None = None) -> dict:
        acc = val_class_acc.double().cpu()
        valid = torch.ones_like(acc, dtype=torch.bool) if val_support is None else val_support.cpu() > 0
        if not bool(valid.all()) and not self._warned_missing:
            self._warned_missing = True
            log.warning("CDB: classes %s have no validation images; they keep the neutral (mean) weight and "
                        "are left out of the dynamic-tau rule", torch.nonzero(~valid).flatten().tolist())
        if self.ema > 0 and self.smoothed is not None:
            acc = self.ema * self.smoothed + (1 - self.ema) * acc
        self.smoothed = acc
        self.updates += 1
        tau = (dynamic_tau(acc[valid], self.tau_rule, self.eps) if bool(valid.any()) else 1.0) if self.dynamic \
            else float(self.tau)
        self.current_tau = tau
        note = ""
        if self.updates <= self.warmup:
            note = f"warm-up {self.updates}/{self.warmup}: plain CE"
        else:
            self.weights, note = cdb_weights(acc, tau, self.normalize, self.floor, self.min_weight, valid)
        return {"weights": self.weights.tolist(), "tau": tau, "note": note}

    def state_dict(self) -> dict:
        return {"weights": self.weights.clone(), "current_tau": self.current_tau, "updates": self.updates,
                "smoothed": None if self.smoothed is None else self.smoothed.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.weights = state["weights"].clone()
        self.current_tau, self.updates = state["current_tau"], state["updates"]
        self.smoothed = state["smoothed"]
