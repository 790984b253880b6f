"""Loss = base loss (per-sample, pure function) x weighting strategy (who gets how much weight)."""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable

import torch

from cdb.core.errors import ConfigError, check
from cdb.losses.functional import cross_entropy, equalization, focal, reduce_weighted
from cdb.losses.l2rw import LearningToReweight
from cdb.losses.mwn import MetaWeightNet
from cdb.losses.prior import balanced_softmax, ldam, logit_adjust
from cdb.losses.static import ClassBalanced, DeferredReweighting, InverseFrequency
from cdb.losses.weighting import CDBWeighting, Weighting

BASES = {"ce": cross_entropy, "focal": focal, "eql": equalization, "ldam": ldam, "balanced_softmax": balanced_softmax,
         "logit_adjust": logit_adjust}
# static (from class counts), dynamic (from validation accuracy) and meta (from a virtual step on validation data)
WEIGHTINGS = {"none": Weighting, "ifw": InverseFrequency, "cb": ClassBalanced, "drw": DeferredReweighting,
              "cdb": CDBWeighting, "l2rw": LearningToReweight, "mwn": MetaWeightNet}
REDUCTIONS = ("mean", "weighted_mean", "sum")
# keys of a loss config that are not hyper-parameters of the base loss or the weighting
META_KEYS = {"name", "base", "weighting", "reduction", "label", "head"}  # head: read by build_model


@dataclass
class Criterion:
    """A base loss and a weighting strategy; call it on (logits, targets) to get the training loss."""

    base: Callable[..., torch.Tensor]
    weighting: Weighting
    reduction: str = "mean"

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.base(logits, targets)

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, ctx=None) -> torch.Tensor:
        losses = self.per_sample(logits, targets)
        return reduce_weighted(losses, self.weighting.sample_weights(targets, ctx), self.reduction)


def _bind(fn: Callable, params: dict[str, Any], context: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The keyword arguments `fn` accepts from `params` (plus injected `context`), and the param keys used."""
    sig = inspect.signature(fn)
    names = [p for p in sig.parameters if p not in ("logits", "targets", "self")]
    used = {k for k in params if k in names}
    kwargs = {k: params[k] for k in used}
    kwargs.update({k: v for k, v in context.items() if k in names})
    return kwargs, used


def build_criterion(cfg: dict[str, Any], num_classes: int, class_counts: torch.Tensor) -> Criterion:
    """Criterion from a loss config such as {base: ce, weighting: cdb, tau: dynamic, normalize: none}."""
    cfg = dict(cfg)
    base, weighting = cfg.get("base", "ce"), cfg.get("weighting", "none")
    check(base in BASES, "loss.base", base, f"one of {sorted(BASES)}")
    check(weighting in WEIGHTINGS, "loss.weighting", weighting, f"one of {sorted(WEIGHTINGS)}")
    base_fn, weighting_cls = BASES[base], WEIGHTINGS[weighting]
    params = {k: v for k, v in cfg.items() if k not in META_KEYS}
    context = {"num_classes": num_classes, "class_counts": class_counts}
    base_kwargs, used_b = _bind(base_fn, params, context)
    w_kwargs, used_w = _bind(weighting_cls.__init__, params, context)
    unknown = set(params) - used_b - used_w
    if unknown:
        raise ConfigError(f"loss.{sorted(unknown)[0]} is not a setting of base loss {cfg.get('base')!r} "
                          f"or weighting {cfg.get('weighting')!r}")
    base = functools.partial(base_fn, **base_kwargs) if base_kwargs else base_fn
    weighting = weighting_cls(**w_kwargs)
    # A weighting whose weights are normalised over the batch (L2RW, MW-Net) fixes the reduction.
    required = getattr(weighting, "required_reduction", None)
    reduction = cfg.get("reduction") or required or "mean"
    if reduction not in REDUCTIONS:
        raise ConfigError(f"loss.reduction={reduction!r} is not allowed: one of {', '.join(REDUCTIONS)}")
    if required and reduction != required:
        raise ConfigError(f"loss.reduction={reduction!r} is not allowed with weighting {cfg.get('weighting')!r}: "
                          f"its weights need reduction {required!r}")
    return Criterion(base=base, weighting=weighting, reduction=reduction)
