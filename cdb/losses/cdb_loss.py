"""CDB-CE for any PyTorch training loop: `CDBLoss`, an nn.Module, and the functions it is made of.

    from cdb import CDBLoss
    criterion = CDBLoss(num_classes)             # plain CE until the first update (all weights 1)
    loss = criterion(logits, targets)
    criterion.update(class_accuracy)             # after every validation: per-class accuracy as fractions in [0, 1]

The runner's CDB-CE (`loss=cdb`, cdb.losses.weighting.CDBWeighting) holds one of these modules and calls the same
update, so a library user and `cdb-run` compute the same weights (docs/library.md).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from cdb.core.errors import ConfigError, check
from cdb.losses.functional import cross_entropy, reduce_weighted

TAU_RULES = ("paper", "authors_sigmoid", "authors_2sigmoid")
NORMALIZE = ("none", "mean")
REDUCTIONS = ("mean", "weighted_mean", "sum", "none")
PERCENT_HINT = "percent must be divided by 100"


def dynamic_tau(acc: torch.Tensor, rule: str = "paper", eps: float | None = None) -> float:
    """tau from class-wise validation accuracies, as fractions (of the classes that have validation images).

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
    raise ConfigError(f"loss.tau_rule={rule!r} is not allowed: one of {', '.join(TAU_RULES)}")


_TINY = torch.finfo(torch.float64).tiny  # the smallest normal float64: below it a weight has lost its precision


def cdb_weights(acc: torch.Tensor, tau: float, normalize: str = "mean", floor: float = 0.0,
                min_weight: float = 0.0, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, str]:
    """(weights, note): w_c = (1 - A_c)^tau (paper eq. 2) from accuracies as fractions, with optional lower bounds
    and normalisation; the note (usually "") says when a fallback was taken.

    tau = 0 gives ones (0^0 = 1, plain CE). floor bounds the difficulty, d_c >= floor; min_weight bounds
    the weight relative to the largest one, w_c >= min_weight * max w (scale-free, so it holds for any tau).
    normalize: "mean" (rescale to sum C, mean 1: the authors' code) or "none" (eq. 2 as written).

    valid marks the classes with validation images; the others have no accuracy and get the neutral weight,
    the mean weight of the valid classes (1 after normalisation), instead of the largest.
    If every valid weight is 0 (every class at 100% validation accuracy, tau > 0) eq. 2 is 0/0 after
    normalisation; the weights take the limit of equal difficulties d -> 0, which is continuous with the
    neighbouring cases: uniform (all 1) under "mean", all 0 under "none" (eq. 2 itself tends to 0 there).
    A tau so large that every d^tau underflows (e.g. 1e300) is computed in log space instead: under "mean" the
    ratios d_c^tau / max d^tau are what count, and they do not underflow for the hardest class.
    """
    acc = acc.double()
    valid = torch.ones_like(acc, dtype=torch.bool) if valid is None else valid.bool()
    if not bool(valid.any()):
        return torch.ones_like(acc).float(), "no class has validation images: uniform weights"
    d = (1.0 - acc[valid]).clamp(min=floor, max=1.0)
    w_valid = torch.pow(d, tau)  # torch.pow(0, 0) == 1
    note = ""
    underflow = float(w_valid.max()) < _TINY and bool((d > 0).any())
    if underflow and normalize == "mean":  # only the ratios d_c^tau / max d^tau count: from logarithms
        w_valid = torch.exp(tau * (torch.log(d) - torch.log(d.max())))
        note = f"(1 - A_c)^tau underflows at tau {tau:g}: weights from logarithms (the hardest class leads)"
    if min_weight > 0:
        w_valid = torch.maximum(w_valid, min_weight * w_valid.max())
    if float(w_valid.sum()) <= 0.0:
        if underflow:  # normalize=none: eq. 2's true weights are below the smallest float, not 0/0
            return torch.zeros_like(acc).float(), (f"every (1 - A_c)^tau is below the smallest float at tau "
                                                   f"{tau:g}: weights 0 (eq. 2 as written, normalize=none)")
        fill = 1.0 if normalize == "mean" else 0.0
        note = ("every class at 100% validation accuracy: weights " +
                ("uniform (the limit of equal difficulties under mean normalisation)" if fill else
                 "0 (eq. 2's limit without normalisation)"))
        return torch.full_like(acc, fill).float(), note
    w = torch.full_like(acc, float(w_valid.mean()))
    w[valid] = w_valid
    if not bool(valid.all()):
        missing = f"{int((~valid).sum())} class(es) without validation images keep the neutral (mean) weight"
        note = f"{note}; {missing}" if note else missing
    if normalize == "mean":
        w = w * (len(w) / w.sum())
    return w.float(), note


def per_class_counts(logits_or_labels: torch.Tensor, targets: torch.Tensor,
                     num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(correct, total) per class, int64 on the inputs' device: logits (N, C) are turned into labels by argmax,
    labels (N,) are taken as they are. Sum them over batches (and all-reduce them under DDP), then divide."""
    preds = logits_or_labels.argmax(1) if logits_or_labels.dim() == 2 else logits_or_labels
    if preds.shape != targets.shape:
        raise ValueError(f"predictions have shape {tuple(preds.shape)} but targets {tuple(targets.shape)}: "
                         "give logits (N, C) or labels (N,) for N targets")
    targets = targets.long()
    total = torch.bincount(targets, minlength=num_classes)
    correct = torch.bincount(targets[preds.long() == targets], minlength=num_classes)
    if len(total) > num_classes:
        raise ValueError(f"targets hold label {len(total) - 1}, outside 0..{num_classes - 1}")
    return correct, total


def per_class_accuracy(correct: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """Accuracy (recall) of each class as a fraction in [0, 1], float64; a class with no sample gets 0 (pass
    `total` on as the support so that CDB leaves it out)."""
    correct, total = torch.as_tensor(correct).double(), torch.as_tensor(total).double()
    return torch.where(total > 0, correct / total.clamp_min(1), torch.zeros_like(total))


def check_options(prefix: str, tau: Any, tau_rule: str, eps: float | None, normalize: str, floor: float,
                  ema: float, warmup: int, min_weight: float) -> None:
    """Raise ConfigError (a ValueError) in one line for an option CDB-CE does not allow; prefix: "loss." when
    the option comes from a config, "" from Python."""
    if isinstance(tau, str):
        check(tau == "dynamic", f"{prefix}tau", tau, "a number >= 0 or 'dynamic'")
    else:
        check(isinstance(tau, (int, float)) and not isinstance(tau, bool) and math.isfinite(tau) and tau >= 0,
              f"{prefix}tau", tau, "a number >= 0 or 'dynamic'")
    check(tau_rule in TAU_RULES, f"{prefix}tau_rule", tau_rule, f"one of {', '.join(TAU_RULES)}")
    check(eps is None or (isinstance(eps, (int, float)) and eps > 0), f"{prefix}eps", eps,
          "null (the rule's own) or a number > 0")
    check(normalize in NORMALIZE, f"{prefix}normalize", normalize, "one of none, mean")
    check(0.0 <= floor < 1.0, f"{prefix}floor", floor, "a number in [0, 1)")
    check(0.0 <= ema < 1.0, f"{prefix}ema", ema, "a number in [0, 1)")
    check(int(warmup) == warmup and warmup >= 0, f"{prefix}warmup", warmup, "an integer >= 0")
    check(0.0 <= min_weight <= 1.0, f"{prefix}min_weight", min_weight, "a number in [0, 1]")


class CDBLoss(nn.Module):
    """Class-wise difficulty-balanced cross-entropy (paper sec. 3): CE of each sample times w_c = (1 - A_c)^tau
    of its class, the weights recomputed from per-class validation accuracy A_c at every `update`.

    Before the first update every weight is 1 (plain CE). tau: "dynamic" (eq. 3-4, by `tau_rule`) or a number
    >= 0. normalize: "mean" (weights rescaled to mean 1, the authors' code) or "none" (eq. 2 as written).
    reduction: "mean" (plain batch mean of w * CE, the authors' code), "weighted_mean" (sum w CE / sum w),
    "sum" or "none" (per-sample losses). Stabilisers beyond the paper, each off by default: floor (lower bound
    on difficulty), ema (smoothing of the accuracies across updates), warmup (updates that keep plain CE),
    min_weight (each weight at least this fraction of the largest).

    State (weights, tau, the smoothed accuracies, the number of updates) is in buffers and `state_dict()`, so
    `.to(device)` and checkpoints carry it.
    """

    weights: torch.Tensor
    tau: torch.Tensor
    accuracy: torch.Tensor

    def __init__(self, num_classes: int, tau: float | str = "dynamic", tau_rule: str = "paper",
                 eps: float | None = None, normalize: str = "mean", reduction: str = "mean", floor: float = 0.0,
                 ema: float = 0.0, warmup: int = 0, min_weight: float = 0.0):
        super().__init__()
        check(isinstance(num_classes, int) and not isinstance(num_classes, bool) and num_classes >= 1,
              "num_classes", num_classes, "an integer >= 1")
        check_options("", tau, tau_rule, eps, normalize, floor, ema, warmup, min_weight)
        check(reduction in REDUCTIONS, "reduction", reduction, f"one of {', '.join(REDUCTIONS)}")
        self.num_classes = num_classes
        self.dynamic = isinstance(tau, str)
        self.tau_setting = tau
        self.tau_rule, self.eps, self.normalize, self.reduction = tau_rule, eps, normalize, reduction
        self.floor, self.ema, self.warmup, self.min_weight = float(floor), float(ema), int(warmup), float(min_weight)
        self.register_buffer("weights", torch.ones(num_classes))
        self.register_buffer("tau", torch.tensor(0.0 if self.dynamic else float(tau), dtype=torch.float64))
        # the (smoothed) accuracies of the last update, float64 as the arithmetic is; meaningful once updates > 0
        self.register_buffer("accuracy", torch.zeros(num_classes, dtype=torch.float64))
        self.updates = 0
        self.note = ""  # what the last update did beyond eq. 2 (a fallback, the warm-up), "" when nothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        losses = cross_entropy(logits, targets)
        w = self.weights[targets]
        return w * losses if self.reduction == "none" else reduce_weighted(losses, w, self.reduction)

    def update(self, class_accuracy: torch.Tensor | Sequence[float], support: torch.Tensor | None = None
               ) -> torch.Tensor:
        """New weights from per-class accuracy as fractions in [0, 1] (one per class); returns them.

        support (optional): validation samples per class; a class with none keeps the neutral (mean) weight and
        is left out of the dynamic-tau rule.
        """
        acc = torch.as_tensor(class_accuracy).detach().to("cpu", torch.float64)
        if acc.shape != (self.num_classes,):
            raise ValueError(f"class_accuracy has shape {tuple(acc.shape)}: one accuracy per class "
                             f"({self.num_classes},) is needed")
        bad = ~((acc >= 0) & (acc <= 1))  # NaN included
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0])
            raise ValueError(f"class_accuracy must be fractions in [0, 1], got {float(acc[i]):g} for class {i}: "
                             f"{PERCENT_HINT}")
        valid = torch.ones(self.num_classes, dtype=torch.bool) if support is None \
            else torch.as_tensor(support).detach().cpu() > 0
        self._update(acc, valid)
        return self.weights

    def update_from_counts(self, correct: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
        """New weights from correct and total validation samples per class (sum them over batches, all-reduce
        them across processes under DDP); a class with total 0 keeps the neutral weight. Returns them."""
        correct, total = torch.as_tensor(correct).detach().cpu(), torch.as_tensor(total).detach().cpu()
        if bool((correct < 0).any()) or bool((correct > total).any()):
            raise ValueError("correct must be between 0 and total for every class")
        return self.update(per_class_accuracy(correct, total), support=total)

    def update_from_predictions(self, logits_or_labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """New weights from a whole validation set's logits (N, C) or predicted labels (N,) and its targets."""
        return self.update_from_counts(*per_class_counts(logits_or_labels.detach(), targets, self.num_classes))

    def _update(self, acc: torch.Tensor, valid: torch.Tensor) -> float:
        """The one CDB update (the runner's too): smoothing, tau, warm-up, weights. acc: float64 fractions on the
        CPU. Returns tau; self.note says what happened beyond eq. 2."""
        if self.ema > 0 and self.updates > 0:
            acc = self.ema * self.accuracy.detach().cpu() + (1 - self.ema) * acc
        self.updates += 1
        if self.dynamic:
            tau = dynamic_tau(acc[valid], self.tau_rule, self.eps) if bool(valid.any()) else 1.0
        else:
            tau = float(self.tau_setting)
        with torch.no_grad():
            self.accuracy.copy_(acc)
            self.tau.fill_(tau)
            if self.updates <= self.warmup:
                self.note = f"warm-up {self.updates}/{self.warmup}: plain CE"
            else:
                w, self.note = cdb_weights(acc, tau, self.normalize, self.floor, self.min_weight, valid)
                self.weights.copy_(w)
        return tau

    def get_extra_state(self) -> dict:
        return {"updates": self.updates}

    def set_extra_state(self, state: dict) -> None:
        self.updates = int(state["updates"])

    def extra_repr(self) -> str:
        tau = f"'{self.tau_setting}', tau_rule='{self.tau_rule}'" if self.dynamic else f"{self.tau_setting}"
        return f"num_classes={self.num_classes}, tau={tau}, normalize='{self.normalize}', reduction='{self.reduction}'"
