"""Meta weightings: per-sample weights from a virtual SGD step evaluated on validation data.

Shared by L2RW (Ren et al. 2018) and Meta-Weight-Net (Shu et al. 2019). Both ask:
if the model took one SGD step on the weighted training loss, how would the
loss on a validation (meta) batch change? They differentiate through that
step with torch.func (functional_call + grad), leaving the real model untouched.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch
from torch.func import functional_call, grad
from torch.nn.modules.batchnorm import _BatchNorm

from cdb.core.errors import CdbError, ConfigError, check
from cdb.losses.weighting import Weighting


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module behind a DistributedDataParallel wrapper (the meta step is local to each process)."""
    return getattr(model, "module", model)


@contextmanager
def batch_stats_only(module: torch.nn.Module):
    """BatchNorm uses batch statistics without updating its running averages inside the block.

    The virtual step's forward passes must not touch the real model's buffers
    (torch.func also forbids mutating them); Ren's and Shu's code run the
    virtual step on a throw-away copy in train mode, i.e. with batch statistics.
    """
    bns = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    for m in bns:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in bns:
            m.track_running_stats = True


def trainable(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies (views) of the parameters the optimizer trains; frozen ones stay the module's own."""
    return {k: p.detach() for k, p in module.named_parameters() if p.requires_grad}


def val_loss_after_step(module: torch.nn.Module, base: Callable, params: dict[str, torch.Tensor],
                        train_objective: Callable[[dict], torch.Tensor], lr: float,
                        x_val: torch.Tensor, y_val: torch.Tensor) -> torch.Tensor:
    """Mean base loss on (x_val, y_val) after theta' = theta - lr * grad_theta train_objective(theta)."""
    g = grad(train_objective)(params)
    stepped = {k: params[k] - lr * g[k] for k in params}
    return base(functional_call(module, stepped, (x_val,)), y_val).mean()


class MetaWeighting(Weighting):
    """Base of meta weightings: the meta batch, per-class weight statistics for the log, resume state.

    meta_per_class=None: every step takes the next batch of the validation split
    (the paper gives every method its 500-per-class validation split).
    meta_per_class=k: a fixed balanced meta set of k images per class, drawn once
    from the validation split in the run's seeded order and kept in the
    checkpoint (Ren et al. used 5 per class on MNIST, Shu et al. 10 on CIFAR).
    """

    required_reduction: str | None = "sum"   # weights are normalised to sum 1 over the batch

    def __init__(self, num_classes: int, class_counts: torch.Tensor | None = None, meta_per_class: int | None = None):
        super().__init__(num_classes, class_counts)
        check(meta_per_class is None or (int(meta_per_class) == meta_per_class and meta_per_class >= 1),
              "loss.meta_per_class", meta_per_class, "null (the whole validation split) or an integer >= 1")
        self.meta_per_class = None if meta_per_class is None else int(meta_per_class)
        self.meta_x: torch.Tensor | None = None
        self.meta_y: torch.Tensor | None = None
        self._w_sum: torch.Tensor | None = None
        self._w_count: torch.Tensor | None = None

    # ---- what subclasses implement --------------------------------------------------------------------
    def meta_weights(self, ctx, x_val: torch.Tensor, y_val: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ---- the Weighting interface ----------------------------------------------------------------------
    def sample_weights(self, targets: torch.Tensor, ctx=None) -> torch.Tensor:
        if ctx is None:
            raise CdbError(f"{type(self).__name__} needs the training step (model, batch, lr, validation data)")
        x_val, y_val = self.meta_batch(ctx)
        w = self.meta_weights(ctx, x_val, y_val).detach()
        self._record(targets, w)
        return w

    def update(self, unit: int, val_class_acc: torch.Tensor, val_support: torch.Tensor | None = None) -> dict:
        """Log the mean weight per class since the last validation, in units of 1/batch size (1 = uniform)."""
        if self._w_count is not None:
            seen = self._w_count > 0
            mean = torch.where(seen, self._w_sum / self._w_count.clamp_min(1), torch.zeros_like(self._w_sum))
            self.weights = torch.where(seen.cpu(), mean.cpu().float(), self.weights)
            self._w_sum, self._w_count = None, None
        return {"weights": self.weights.tolist()}

    def class_weights(self) -> torch.Tensor:
        return self.weights

    def meta_batch(self, ctx) -> tuple[torch.Tensor, torch.Tensor]:
        if self.meta_per_class is None:
            return ctx.val_batch()
        if self.meta_x is None:
            self.meta_x, self.meta_y = self._draw_meta_set(ctx.val_batch)
        return self.meta_x.to(ctx.inputs.device), self.meta_y.to(ctx.inputs.device)

    def _draw_meta_set(self, val_batch: Callable) -> tuple[torch.Tensor, torch.Tensor]:
        """The first k distinct images of each class in the validation stream (which cycles through the split)."""
        k, picked = self.meta_per_class, {c: [] for c in range(self.num_classes)}
        idle = 0
        while idle < 100:   # 100 batches with nothing new: the split has fewer than k images of some class
            x, y = val_batch()
            idle += 1
            for xi, yi in zip(x.cpu(), y.cpu().tolist()):
                have = picked[yi]
                if len(have) < k and not any(torch.equal(xi, h) for h in have):
                    have.append(xi)
                    idle = 0
            if all(len(v) >= k for v in picked.values()):
                xs = [xi for c in range(self.num_classes) for xi in picked[c]]
                return torch.stack(xs), torch.arange(self.num_classes).repeat_interleave(k)
        raise ConfigError(f"loss.meta_per_class={k} is not allowed: the validation split has fewer distinct images "
                          f"of some class (found {[len(v) for v in picked.values()]})")

    def _record(self, targets: torch.Tensor, w: torch.Tensor) -> None:
        if self._w_sum is None:
            self._w_sum = torch.zeros(self.num_classes, device=w.device)
            self._w_count = torch.zeros(self.num_classes, device=w.device)
        scale = len(w) if self.required_reduction == "sum" else 1.0
        self._w_sum.index_add_(0, targets, w.float() * scale)
        self._w_count.index_add_(0, targets, torch.ones_like(w, dtype=torch.float32))

    def state_dict(self) -> dict:
        return {"weights": self.weights.clone(), "meta_x": self.meta_x, "meta_y": self.meta_y}

    def load_state_dict(self, state: dict) -> None:
        self.weights = state["weights"].clone()
        self.meta_x, self.meta_y = state["meta_x"], state["meta_y"]
