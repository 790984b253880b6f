"""Where a run's computation is placed: one process (`Local`) or one of several DDP processes (`Dist`).

The loop calls the same hooks on either, so there is one loop: `Local` is
the identity placement (every hook returns its input), `cdb.train.distributed.Dist`
shards batches and evaluation splits and sums counts over processes.
"""
from __future__ import annotations

import torch

from cdb.losses.functional import reduce_weighted
from cdb.train.config import resolve_device


class Local:
    """Everything in this process, on one device."""

    rank, world_size, is_main = 0, 1, True

    def __init__(self, device: str | torch.device = "auto"):
        self.device = resolve_device(device) if isinstance(device, str) else device

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def shard_batches(self, batches: list[torch.Tensor]) -> list[torch.Tensor]:
        return batches

    def shard_split(self, split):
        return split

    def reduce_loss(self, losses: torch.Tensor, weights: torch.Tensor | None, reduction: str, batch) -> torch.Tensor:
        """The step's loss from per-sample losses and weights (cdb.losses.functional.reduce_weighted)."""
        return reduce_weighted(losses, weights, reduction)

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def reduce_eval(self, res):
        return res

    def same_on_all(self, flag: bool, what: str) -> bool:
        return bool(flag)

    def barrier(self) -> None:
        pass
