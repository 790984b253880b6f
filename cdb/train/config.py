"""The trainer's settings (the one source of every default) and the one device resolver.

TrainerConfig is also the schema of the `trainer` config node: cdb.config registers it in Hydra's ConfigStore as
trainer/base, and every configs/trainer/*.yaml preset starts from it, stating only what it changes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, List, Mapping, Optional

from cdb.core.errors import CdbError, ConfigError, check
from cdb.train.tensorboard import MISSING, available

if TYPE_CHECKING:
    import torch


SAMPLERS = ("instance", "class_balanced", "sqrt", "progressive")  # trainer.sampler (cdb/train/batches.py)
BACKENDS = ("auto", "nccl", "gloo")  # trainer.dist_backend: auto = NCCL on GPUs, gloo on CPU
Progress = Any  # trainer.progress: "auto", true or false (OmegaConf has no union type; cdb.build.checks checks it)


def show_progress(setting, *, tty: bool, env: Mapping[str, str], sweep: bool) -> bool:
    """Whether a run shows its progress bar. trainer.progress=true / false: as given. auto (the default): only on a
    terminal (stderr is a TTY), never in CI (the CI variable that CI services set, unless it is empty, 0 or
    false) and never in a sweep (-m: the pack launcher or any Hydra launcher), whose many runs would each draw one."""
    if isinstance(setting, bool):
        return setting
    ci = str(env.get("CI", "")).strip().lower() not in ("", "0", "false", "no")
    return bool(tty) and not ci and not sweep


def check_parallel(devices, backend) -> None:
    """trainer.devices and trainer.dist_backend, checked where TrainerConfig is built and where DDP starts."""
    check(int(devices) == devices and devices >= 1, "trainer.devices", devices, "an integer >= 1")
    check(backend in BACKENDS, "trainer.dist_backend", backend, "auto, nccl or gloo")


@dataclass
class TrainerConfig:
    """Every knob of the loop. `unit` says what `length`, `milestones`, `warmup` and `eval_every` count.

    The recipe settings (unit ... checkpoint_every) are Optional only because trainer=auto leaves them null
    until cdb/build/recipe.py fills them from the preset chosen for the data; validate() refuses a null left over.
    The run-time settings below them (devices ... data_on_device) are never null.
    """

    unit: Optional[str] = "epoch"           # "epoch" (a pass over the training split) or "step" (one batch)
    length: Optional[int] = 4000           # number of units to train
    eval_every: Optional[int] = 1          # units between validations, i.e. between CDB weight updates
    batch_size: Optional[int] = 100
    lr: Optional[float] = 1e-3
    momentum: Optional[float] = 0.9
    weight_decay: Optional[float] = 5e-4
    nesterov: Optional[bool] = False
    schedule: Optional[str] = "step"       # "step" (x gamma at each milestone) or "cosine" (to 0 over `length` units)
    milestones: Optional[List[int]] = field(default_factory=list)  # units after which lr is multiplied by gamma
    gamma: Optional[float] = 0.1
    lr_warmup: Optional[int] = 0           # units of linear lr warm-up (Cui et al. use 5 epochs on CIFAR)
    select: Optional[str] = "last"         # checkpoint whose test metrics are "the" result: last or best (validation)
    device: Optional[str] = "auto"         # auto, cpu, cuda, cuda:N
    progress: Optional[Progress] = "auto"  # auto (a bar on a terminal; none in CI or sweeps), true, false
    num_workers: Optional[int] = 0
    eval_batch_size: Optional[int] = 1000
    # validations between saved checkpoints; the last one is always saved, and so is any validation 5 minutes or more
    # after the last checkpoint (cdb.train.run.CHECKPOINT_MINUTES): an interruption loses at most a few minutes
    checkpoint_every: Optional[int] = 1
    # how training samples are drawn (cdb/train/batches.py; Kang et al. 2020, sec. 3): instance (shuffled passes),
    # class_balanced, sqrt or progressive (p_j ∝ n_j^q, q = 0, 1/2, or from 1 to 0 over `length`)
    sampler: str = "instance"
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
    tensorboard: bool = False  # TensorBoard log in RUN_DIR/tensorboard/ (cdb.train.tensorboard, cdb-loss[tensorboard])

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainerConfig":
        names = {f.name for f in fields(cls)}
        unset = sorted(k for k, v in d.items() if v is None)
        if unset:
            raise CdbError(f"trainer.{unset[0]} is null: give it a value (only trainer=auto fills nulls, "
                           "from the data)")
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
        check(0 <= self.momentum < 1, "trainer.momentum", self.momentum, "a number in [0, 1) (SGD's momentum)")
        check(self.weight_decay >= 0, "trainer.weight_decay", self.weight_decay, "a number >= 0")
        check(self.gamma > 0, "trainer.gamma", self.gamma, "a number > 0 (the lr factor at each milestone)")
        check(self.lr_warmup >= 0, "trainer.lr_warmup", self.lr_warmup, "an integer >= 0")
        check(self.checkpoint_every >= 1, "trainer.checkpoint_every", self.checkpoint_every,
              "an integer >= 1 (validations between checkpoints; the last one is always saved)")
        check(self.eval_batch_size >= 1, "trainer.eval_batch_size", self.eval_batch_size, "an integer >= 1")
        check(self.num_workers >= 0, "trainer.num_workers", self.num_workers, "an integer >= 0")
        check(self.select in ("last", "best"), "trainer.select", self.select, "last or best")
        check(self.sampler in SAMPLERS, "trainer.sampler", self.sampler,
              "instance, class_balanced, sqrt or progressive")
        check(self.schedule in ("step", "cosine"), "trainer.schedule", self.schedule, "step or cosine")
        check(isinstance(self.progress, bool) or self.progress == "auto", "trainer.progress", self.progress,
              "auto, true or false")
        check(all(0 < m for m in self.milestones), "trainer.milestones", self.milestones, "positive unit counts")
        check_parallel(self.devices, self.dist_backend)
        check(isinstance(self.tensorboard, bool), "trainer.tensorboard", self.tensorboard, "true or false")
        if self.tensorboard:
            if not available():
                raise ConfigError(MISSING)

    def lr_at(self, u: int) -> float:
        """Learning rate during unit u (0-based): step decay at milestones or cosine, optional linear warm-up."""
        if self.schedule == "cosine":  # per unit, like CosineAnnealingLR(T_max=length) stepped every epoch
            lr = 0.5 * self.lr * (1.0 + math.cos(math.pi * u / self.length))
        else:
            lr = self.lr * self.gamma ** sum(u >= m for m in self.milestones)
        if self.lr_warmup and u < self.lr_warmup:
            lr *= (u + 1) / self.lr_warmup
        return lr


def resolve_device(name: str) -> torch.device:
    """trainer.device -> torch.device: auto takes the GPU when there is one; a missing GPU is a one-line error."""
    import torch  # here, not at import time: the CLI imports this module (the trainer schema) before any run

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CdbError(f"trainer.device={name!r} is not available: no CUDA device here; use trainer.device=cpu")
    return dev
