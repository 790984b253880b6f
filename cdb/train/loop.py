"""The training loop: train for a unit (epoch or step), validate, update the weighting, checkpoint. Repeat.

One readable loop in the style of torchvision's reference train.py. Every
piece of state a resumed run needs is in the checkpoint; the order of
batches is a function of (seed, step) so nothing about the data stream has
to be saved.
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from ..data.augment import normalize
from ..data.base import DatasetSplits, TensorSplit
from ..errors import CdbError, check
from ..losses import Criterion
from ..metrics import summarize
from . import io, speed
from .batches import steps_per_unit, train_batches, unit_batches
from .evaluate import EvalResult, evaluate


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
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CdbError(f"trainer.device={name!r} is not available: no CUDA device here; use trainer.device=cpu")
    return dev


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


class Trainer:
    """Train `model` on `data` with `criterion`, writing everything to `run_dir`."""

    def __init__(self, model: torch.nn.Module, data: DatasetSplits, criterion: Criterion, cfg: TrainerConfig,
                 run_dir: str | Path, seed: int = 0, dist=None):
        self.cfg, self.data, self.criterion, self.seed = cfg, data, criterion, int(seed)
        self.run_dir = Path(run_dir)
        self.dist = dist  # None (one process) or a cdb.train.distributed.Dist
        self.device = resolve_device(cfg.device) if dist is None else dist.device
        speed.configure_backends(cfg, self.device)
        self.model = speed.prepare_model(model.to(self.device), cfg)
        # self.net trains (DDP and/or compiled); evaluation uses self.eval_net, which is never DDP-wrapped:
        # each rank evaluates its own shard, so no collective may hide in its forward
        self.net = speed.compile_model(self.model if dist is None else dist.wrap(self.model), cfg)
        self.eval_net = self.net if dist is None else speed.compile_model(self.model, cfg)
        self.autocast = speed.autocast(cfg, self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
        self.steps_per_unit = steps_per_unit(len(data.train), cfg.batch_size, cfg.unit)
        self.unit = 0          # units completed
        self.best = {"val_balanced_accuracy": -1.0, "unit": None}

    # ---- paths and state -------------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.dist is None or self.dist.rank == 0

    def path(self, name: str) -> Path:
        return self.run_dir / name

    def state(self, complete: bool = False) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "weighting": self.criterion.weighting.state_dict(),
            "unit": self.unit,
            "best": dict(self.best),
            "torch_rng": torch.get_rng_state(),
            "complete": complete,
        }

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.criterion.weighting.load_state_dict(state["weighting"])
        self.unit, self.best = int(state["unit"]), dict(state["best"])
        torch.set_rng_state(state["torch_rng"])

    # ---- one validation --------------------------------------------------------------------------------
    def validate(self, split) -> EvalResult:
        """Counts over the whole split; under DDP each rank counts a disjoint shard and the counts are summed."""
        part = split if self.dist is None else self.dist.shard_split(split)
        res = evaluate(self.eval_net, part, self.data, self.device, self.cfg.eval_batch_size,
                       autocast=self.autocast, on_device=self.cfg.data_on_device, num_workers=self.cfg.num_workers)
        return res if self.dist is None else self.dist.reduce_eval(res)

    def _val_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The validation batch meta weightings use at `step`: a seeded stream over the validation split, a
        function of (seed, step) like the training batches, so a resumed run draws the same ones."""
        n = len(self.data.val)
        idx = unit_batches(n, min(self.cfg.batch_size, n), "step", step, self.seed + 7)
        return val_batch_tensors(self.data, idx[0], self.device)

    # ---- the loop --------------------------------------------------------------------------------------
    def begin(self, resume: bool = False) -> dict | None:
        """Load the last checkpoint when resuming (every rank loads the same file); the metrics if already done."""
        last = self.path("checkpoints/last.pt")
        found = last.exists() if self.dist is None else self.dist.same_on_all(last.exists(), str(last))
        if found:
            if not resume:
                raise CdbError(f"{self.run_dir} already holds a run; pass resume=true to continue it "
                               "(a finished run is then only reported), or remove that directory to start over")
            self.load_state(io.load_checkpoint(last))
            metrics = self.path("metrics.json")
            if self.unit >= self.cfg.length and metrics.exists():
                return json.loads(metrics.read_text())
        log_rows = [r for r in io.read_jsonl(self.path("log.jsonl")) if r["unit"] <= self.unit]
        if self.is_main:
            io.write_jsonl(self.path("log.jsonl"), log_rows)
        return None

    def fit(self, resume: bool = False) -> dict:
        cfg = self.cfg
        done = self.begin(resume)
        if done is not None:
            return done

        total_steps = cfg.length * self.steps_per_unit
        bar = tqdm(total=total_steps, initial=self.unit * self.steps_per_unit, disable=not (cfg.progress and self.is_main),
                   desc=self.run_dir.name, unit="step", dynamic_ncols=True, mininterval=1.0)
        t0 = time.time()
        try:
            while self.unit < cfg.length:
                u_end = min(self.unit + cfg.eval_every, cfg.length)
                train_loss = self._train_units(self.unit, u_end, bar)
                self.unit = u_end
                row = self._after_units(train_loss, time.time() - t0)
                bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{row['val_balanced_accuracy']:.2f}",
                                tau=f"{row.get('tau', 0):.3g}")
        except KeyboardInterrupt:
            bar.close()
            raise CdbError(f"interrupted; the last checkpoint in {self.run_dir} is kept: "
                           "run the same command with resume=true to continue") from None
        bar.close()
        return self._finish(time.time() - t0)

    def _train_units(self, u0: int, u1: int, bar) -> float:
        cfg, n = self.cfg, len(self.data.train)
        self.net.train()
        loss_sum, count = torch.zeros((), device=self.device), 0
        # A per-step finiteness check costs a GPU sync (and is rank-local under DDP), so there the check runs
        # once, below, on the summed losses of these units: every rank then raises together.
        step_check = self.device.type == "cpu" and self.dist is None
        for u in range(u0, u1):
            lr = cfg.lr_at(u)
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            batches = unit_batches(n, cfg.batch_size, cfg.unit, u, self.seed)
            if self.dist is not None:
                batches = self.dist.shard_batches(batches)
            first_step = u * self.steps_per_unit
            for i, (x, y) in enumerate(train_batches(self.data, batches, self.device, self.seed, first_step,
                                                     cfg.num_workers, cfg.data_on_device)):
                x = speed.prepare_input(x, cfg)
                step = first_step + i
                val_batch = functools.partial(self._val_batch, step)
                ctx = StepContext(self.net, x, y, lr, self.criterion, val_batch, step)
                with self.autocast() if self.autocast else contextlib.nullcontext():
                    out = self.net(x)
                if self.dist is None:
                    loss = logged = self.criterion(out, y, ctx)
                else:  # this rank's share of the global batch's loss (see Dist.loss)
                    loss, logged = self.dist.loss(self.criterion, out, y, ctx, batches[i])
                if step_check and not torch.isfinite(loss):
                    raise CdbError(f"training loss became {loss.item()} at step {first_step + i}; "
                                   "lower trainer.lr or check the loss settings")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                loss_sum += logged.detach()
                count += 1
                bar.update(1)
        if self.dist is not None:
            loss_sum = self.dist.all_reduce_sum(loss_sum)  # shares of each step's global loss add up to it
        if not math.isfinite(float(loss_sum)):
            raise CdbError(f"training loss became non-finite between steps {u0 * self.steps_per_unit} and "
                           f"{u1 * self.steps_per_unit}; lower trainer.lr or check the loss settings")
        return float(loss_sum) / max(count, 1)

    def _after_units(self, train_loss: float, elapsed: float) -> dict:
        """Validate, update the weighting from class-wise validation accuracy, log, keep the best, checkpoint."""
        res = self.validate(self.data.val)
        acc = res.class_accuracy
        info = self.criterion.weighting.update(self.unit, acc, res.confusion.sum(1))
        row = {
            "unit": self.unit,
            "step": self.unit * self.steps_per_unit,
            "lr": self.cfg.lr_at(self.unit - 1),
            "train_loss": train_loss,
            "val_balanced_accuracy": res.balanced_accuracy,
            "val_class_accuracy": [100.0 * float(a) for a in acc],
            **info,
            "time_s": round(elapsed, 3),
        }
        improved = row["val_balanced_accuracy"] > self.best["val_balanced_accuracy"]
        if improved:
            self.best = {"val_balanced_accuracy": row["val_balanced_accuracy"], "unit": self.unit}
        if self.is_main:
            if improved:
                io.atomic_torch_save({"model": self.model.state_dict(), "unit": self.unit},
                                     self.path("checkpoints/best.pt"))
            with open(self.path("log.jsonl"), "a") as f:
                f.write(json.dumps(row) + "\n")
            n_val = self.unit // self.cfg.eval_every
            if n_val % self.cfg.checkpoint_every == 0 or self.unit >= self.cfg.length:
                io.atomic_torch_save(self.state(), self.path("checkpoints/last.pt"))
        return row

    def _finish(self, elapsed: float) -> dict:
        groups = self.data.info.get("groups")
        out = {"status": "complete", "selected": self.cfg.select, "checkpoints": {}}
        best = self.path("checkpoints/best.pt")
        if self.dist is not None:
            self.dist.barrier()  # rank 0 has written best.pt (after the last validation) before any rank looks
        found = best.exists() if self.dist is None else self.dist.same_on_all(best.exists(), str(best))
        best_state = io.load_checkpoint(best) if found else None
        last_state = {k: v.clone() for k, v in self.model.state_dict().items()}
        for name, state in (("last", None), ("best", best_state)):
            if name == "best":
                if state is None:
                    continue
                self.model.load_state_dict(state["model"])
            val, test = self.validate(self.data.val), self.validate(self.data.test)
            out["checkpoints"][name] = {
                "unit": self.unit if name == "last" else state["unit"],
                "val": summarize(val.confusion, val.topk_correct, groups),
                "test": summarize(test.confusion, test.topk_correct, groups),
                "test_confusion": test.confusion.tolist(),
            }
        self.model.load_state_dict(last_state)
        sel = out["checkpoints"].get(self.cfg.select) or out["checkpoints"]["last"]
        out["test"] = sel["test"]
        out["train_class_counts"] = self.data.class_counts.tolist()
        out["class_names"] = self.data.class_names
        out["final_weights"] = self.criterion.weighting.class_weights().tolist()
        out["train_wall_time_s"] = round(elapsed, 2)  # of this invocation (a resumed run counts from the resume)
        if self.is_main:
            io.atomic_torch_save(self.state(complete=True), self.path("checkpoints/last.pt"))
            io.atomic_write_json(self.path("metrics.json"), out)
        return out


def val_batch_tensors(data: DatasetSplits, idx: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """One validation batch for meta steps: no augmentation, the same normalisation as evaluation."""
    split = data.val
    if isinstance(split, TensorSplit):
        return normalize(split.x[idx], data.mean, data.std).to(device), split.y[idx].to(device)
    xs, ys = zip(*(split[int(j)] for j in idx))
    return torch.stack(xs).to(device), torch.as_tensor(ys).to(device)
