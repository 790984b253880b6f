"""The trainer's settings (one source of every default) and the one device resolver."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from ..errors import CdbError, check


@dataclass
class TrainerConfig:
    """Every knob of the loop. `unit` says what `length`, `milestones`, `warmup` and `eval_every` count."""

    unit: str = "epoch"           # "epoch" (a pass over the training split) or "step" (one batch)
    length: int = 4000            # number of units to train
    eval_every: int = 1           # units between validations, i.e. between CDB weight updates
    batch_size: int = 100
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "step"        # "step" (x gamma at each milestone) or "cosine" (to 0 over `length` units)
    milestones: list = field(default_factory=list)  # units after which lr is multiplied by gamma
    gamma: float = 0.1
    warmup: int = 0               # units of linear lr warm-up (Cui et al. use 5 epochs on CIFAR)
    select: str = "last"          # checkpoint whose test metrics are "the" result: last or best (validation)
    device: str = "auto"          # auto, cpu, cuda, cuda:N
    progress: bool = True
    num_workers: int = 0
    eval_batch_size: int = 1000
    checkpoint_every: int = 1     # validations between saved checkpoints (the last one is always saved)
    # ---- parallelism and speed (docs/distributed.md): same computation; amp rounds to bf16, sync_bn=false on a
    # BatchNorm model makes each process normalise with its own slice's statistics ---------------------------
    devices: int = 1              # >1: spawn that many data-parallel processes here (not under torchrun)
    dist_backend: str = "auto"    # auto (NCCL on GPUs, gloo on CPU), nccl, gloo
    sync_bn: bool = True          # SyncBatchNorm under DDP on GPUs, so BN sees the global batch
    amp: bool = False             # bf16 autocast (float32 loss)
    channels_last: bool = False   # NHWC memory layout for weights and inputs
    compile: bool = False         # torch.compile the model
    cudnn_benchmark: bool = False
    data_on_device: bool = True   # in-memory splits moved to the device once, augmented there in batches

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainerConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise CdbError(f"trainer.{sorted(unknown)[0]} is not a trainer setting; known: {sorted(names)}")
        cfg = cls(**d)
        cfg.milestones = list(cfg.milestones or [])
        cfg.validate()
        return cfg

    def validate(self) -> None:
        check(self.unit in ("epoch", "step"), "trainer.unit", self.unit, "epoch or step")
        check(int(self.length) == self.length and self.length > 0, "trainer.length", self.length, "an integer > 0")
        check(self.eval_every >= 1, "trainer.eval_every", self.eval_every, "an integer >= 1")
        check(self.batch_size >= 1, "trainer.batch_size", self.batch_size, "an integer >= 1")
        check(self.lr > 0, "trainer.lr", self.lr, "a number > 0")
        check(self.select in ("last", "best"), "trainer.select", self.select, "last or best")
        check(self.schedule in ("step", "cosine"), "trainer.schedule", self.schedule, "step or cosine")
        check(all(0 < m for m in self.milestones), "trainer.milestones", self.milestones, "positive unit counts")
        check(int(self.devices) == self.devices and self.devices >= 1, "trainer.devices", self.devices,
              "an integer >= 1")
        check(self.dist_backend in ("auto", "nccl", "gloo"), "trainer.dist_backend", self.dist_backend,
              "auto, nccl or gloo")

    def lr_at(self, u: int) -> float:
        """Learning rate during unit u (0-based): step decay at milestones or cosine, optional linear warm-up."""
        if self.schedule == "cosine":  # per unit, like CosineAnnealingLR(T_max=length) stepped every epoch
            lr = 0.5 * self.lr * (1.0 + math.cos(math.pi * u / self.length))
        else:
            lr = self.lr * self.gamma ** sum(u >= m for m in self.milestones)
        if self.warmup and u < self.warmup:
            lr *= (u + 1) / self.warmup
        return lr


def resolve_device(name: str) -> torch.device:
    """trainer.device -> torch.device: auto takes the GPU when there is one; a missing GPU is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CdbError(f"trainer.device={name!r} is not available: no CUDA device here; use trainer.device=cpu")
    return dev
