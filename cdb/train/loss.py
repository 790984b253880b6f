"""The loss of a training step: one callable, chosen once for what trains, that returns each run's loss, (K,).

The loop back-propagates the sum of the K losses (each run's gradient is its own loss's) and adds them, detached,
to the losses it logs. Every loss object reads its runs' class weights (static, or CDB's from the last validation)
when it is built and at `refresh()`, which the loop calls after each validation's weighting update, and keeps them
on the device: a step copies nothing from the host.

- `RunLoss`: one run's own criterion, weighted and reduced where the run is placed (cdb.train.placement: one
  process, or a DDP shard of the global batch); a meta weighting (L2RW, MW-Net) computes each step's sample weights.
- `FusedCE`: R runs of plain class-weighted cross-entropy at once (a few kernels instead of a few per run).
- `PackLoss`: a pack whose runs are not all plain CE: the plain-CE ones (two or more) fused, every other its own.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch

from cdb.data.augment import normalize, to_device
from cdb.data.base import DatasetSplits, TensorSplit
from cdb.losses import Criterion
from cdb.losses.functional import cross_entropy, reduce_weighted
from cdb.train.batches import unit_batches
from cdb.train.run import RunState


@dataclass
class StepContext:
    """What a meta weighting (L2RW, Meta-Weight-Net) may use inside a training step."""

    model: torch.nn.Module
    inputs: torch.Tensor
    targets: torch.Tensor
    lr: float
    criterion: Criterion
    val_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]]
    step: int


def val_batch(run: RunState, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation batch a run's meta weighting uses at `step`: a seeded stream over the validation split, a
    function of (seed, step) like the training batches, so a resumed run draws the same ones."""
    n = len(run.data.val)
    idx = unit_batches(n, min(run.cfg.batch_size, n), "step", step, run.seed + 7)
    return val_batch_tensors(run.data, idx[0], run.device)


def val_batch_tensors(data: DatasetSplits, idx: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """One validation batch for meta steps: no augmentation, the same normalisation as evaluation."""
    split = data.val
    if isinstance(split, TensorSplit):
        return normalize(split.x[idx], data.mean, data.std).to(device), split.y[idx].to(device)
    xs, ys = zip(*(split[int(j)] for j in idx))
    return torch.stack(xs).to(device), torch.as_tensor(ys).to(device)


class RunLoss:
    """One run's loss on its batch, shape (1,). `net`: the network the run trains (what a meta step differentiates)."""

    def __init__(self, run: RunState, net: torch.nn.Module):
        self.run, self.net, self.criterion = run, net, run.criterion
        self.refresh()

    def refresh(self) -> None:
        """The class weights of the weighting's last update, on the device (None: unweighted, or a meta weighting)."""
        w = self.criterion.weighting
        self.weights = None if w.per_step or w.uniform else to_device(w.class_weights(), self.run.device)

    def sample_weights(self, y: torch.Tensor, x: torch.Tensor, step: int, lr: float) -> torch.Tensor | None:
        if self.weights is not None:
            return self.weights[y]
        if not self.criterion.weighting.per_step:
            return None
        ctx = StepContext(self.net, x, y, lr, self.criterion, functools.partial(val_batch, self.run, step), step)
        return self.criterion.weighting.sample_weights(y, ctx)

    def __call__(self, logits: torch.Tensor, y: torch.Tensor, index, *, x: torch.Tensor, step: int,
                 lr: float) -> torch.Tensor:
        losses = self.criterion.per_sample(logits, y)
        w = self.sample_weights(y, x, step, lr)
        return self.run.place.reduce_loss(losses, w, self.criterion.reduction, index).reshape(1)


def fusable(run: RunState) -> bool:
    """Whether a run's loss can join a pack's one batched loss: plain CE, class weights, mean reduction."""
    c = run.criterion
    return (c.base is cross_entropy and c.reduction == "mean" and run.place.world_size == 1
            and not c.weighting.per_step)


def fused_ce(z: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-run mean_i(w_{k, y_ki} * CE_ki) for R runs at once (a few kernels instead of a few per run).

    Each row's CE and weight are the ones the run's own criterion computes; the mean runs over each run's
    batch only. z: logits (R, B, C); y: targets (R, B); weights: (R, C). Returns (R,).
    """
    r, b, c = z.shape
    ce = cross_entropy(z.reshape(r * b, c), y.reshape(-1)).view(r, b)
    return reduce_weighted(ce, weights.gather(1, y), "mean", dim=1)


class FusedCE:
    """The loss of R fusable runs (fused_ce) on their logits (R, B, C) and labels (a list of R), shape (R,)."""

    def __init__(self, runs: list[RunState]):
        self.runs = runs
        self.refresh()

    def refresh(self) -> None:
        weights = torch.stack([r.criterion.weighting.class_weights() for r in self.runs])  # (runs, classes)
        self.weights = to_device(weights, self.runs[0].device)

    def __call__(self, logits: torch.Tensor, y: list[torch.Tensor], index=None, *, x=None, step: int = 0,
                 lr: float = 0.0) -> torch.Tensor:
        return fused_ce(logits, torch.stack(y), self.weights)


class PackLoss:
    """The loss of a pack whose runs are not all fusable, shape (K,): its fusable runs, when two or more, as one
    FusedCE, every other run with its own RunLoss. Each run's loss and gradient are those it has alone."""

    def __init__(self, runs: list[RunState], net: torch.nn.Module):
        fused = [k for k, r in enumerate(runs) if fusable(r)]
        self.fused = fused if len(fused) > 1 else []
        self.together = FusedCE([runs[k] for k in self.fused]) if self.fused else None
        self.own = {k: RunLoss(r, net) for k, r in enumerate(runs) if k not in self.fused}

    def refresh(self) -> None:
        for loss in [self.together, *self.own.values()]:
            if loss is not None:
                loss.refresh()

    def __call__(self, logits: torch.Tensor, y: list[torch.Tensor], index: list, *, x: list[torch.Tensor],
                 step: int, lr: float) -> torch.Tensor:
        outs = logits.unbind(0)
        parts: list = [None] * len(outs)
        if self.together is not None:
            per_run = self.together(torch.stack([outs[k] for k in self.fused]), [y[k] for k in self.fused])
            for j, k in enumerate(self.fused):
                parts[k] = per_run[j]
        for k, own in self.own.items():
            parts[k] = own(outs[k], y[k], index[k], x=x[k], step=step, lr=lr)[0]
        return torch.stack(parts)


def pack_loss(runs: list[RunState], net: torch.nn.Module) -> FusedCE | PackLoss:
    """The loss of a pack of K >= 2 runs training `net`: one FusedCE when every run is fusable, else a PackLoss."""
    return FusedCE(runs) if all(fusable(r) for r in runs) else PackLoss(runs, net)
