"""Weighting strategies: each owns the class (or sample) weights and how they change.

The trainer calls `update(unit, val_class_acc)` after every validation (unit: the trainer units done so far) and
then reads `class_weights()`, which its loss keeps on the device until the next update (cdb.train.loss); a
`per_step` strategy computes `sample_weights(targets, ctx)` in every step instead. It never asks which strategy it
runs. Static strategies derive weights from class counts, dynamic ones (CDB) from validation, meta ones (per step)
from a meta step on validation data. `Criterion.__call__` (cdb.losses) calls `sample_weights` at every call.
"""
from __future__ import annotations

import logging

import torch

from cdb.losses.cdb_loss import NORMALIZE, CDBLoss, cdb_weights, check_options, dynamic_tau

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

    @property
    def uniform(self) -> bool:
        """Whether every class weight is 1 (an unweighted loss)."""
        return self._uniform

    @property
    def per_step(self) -> bool:
        """Whether the weights come from each training step (a meta step: L2RW, MW-Net), not from the last update."""
        return type(self).sample_weights is not Weighting.sample_weights

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


__all__ = ["Weighting", "CDBWeighting", "cdb_weights", "dynamic_tau", "NORMALIZE"]


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
        check_options("loss.", tau, tau_rule, eps, normalize, floor, ema, warmup, min_weight)
        # the library's CDBLoss does the update: one implementation for cdb-run and for `from cdb import CDBLoss`
        self.cdb = CDBLoss(num_classes, tau, tau_rule, eps, normalize, "mean", floor, ema, warmup, min_weight)
        self.dynamic = self.cdb.dynamic
        self.tau, self.tau_rule, self.eps = tau, tau_rule, eps
        self.normalize, self.floor, self.ema, self.warmup = normalize, floor, ema, int(warmup)
        self.min_weight = float(min_weight)
        self._warned_missing = False

    @property
    def current_tau(self) -> float:
        return float(self.cdb.tau)

    @property
    def updates(self) -> int:
        return self.cdb.updates

    def update(self, unit: int, val_class_acc: torch.Tensor, val_support: torch.Tensor | None = None) -> dict:
        acc = val_class_acc.double().cpu()
        valid = torch.ones_like(acc, dtype=torch.bool) if val_support is None else val_support.cpu() > 0
        if not bool(valid.all()) and not self._warned_missing:
            self._warned_missing = True
            log.warning("CDB: classes %s have no validation images; they keep the neutral (mean) weight and "
                        "are left out of the dynamic-tau rule", torch.nonzero(~valid).flatten().tolist())
        tau = self.cdb._update(acc, valid)
        self.weights = self.cdb.weights.clone()
        return {"weights": self.weights.tolist(), "tau": tau, "note": self.cdb.note}

    def state_dict(self) -> dict:
        return {"weights": self.weights.clone(), "current_tau": self.current_tau, "updates": self.updates,
                "smoothed": self.cdb.accuracy.clone() if self.updates else None}

    def load_state_dict(self, state: dict) -> None:
        self.weights = state["weights"].clone()
        with torch.no_grad():
            self.cdb.weights.copy_(state["weights"])
            self.cdb.tau.fill_(float(state["current_tau"]))
            if state["smoothed"] is not None:
                self.cdb.accuracy.copy_(state["smoothed"])
        self.cdb.updates = int(state["updates"])
