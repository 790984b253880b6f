"""One run: its model, optimizer, data, loss, weighting, run directory and the files it writes.

A `RunState` holds everything that belongs to one run and nothing about how
its steps are computed: `cdb.train.loop.Pack` trains one or more Trainers
(a pack of K >= 1) and calls the public methods below at each validation.
Every piece of state a resumed run needs is in its checkpoint; the order of
batches is a function of (seed, step), so nothing about the data stream has
to be saved.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from cdb.data.augment import normalize
from cdb.data.base import DatasetSplits, TensorSplit, fingerprint, targets_of
from cdb.core.errors import CdbError
from cdb.losses import Criterion
from cdb.core.metrics import collapse_line, result_line, run_collapsed, summarize
from cdb.rundir import BEST, CONFIG, LAST, LOG, METRICS, TENSORBOARD, io
from cdb.rundir.claims import already_holds_a_run
from cdb.train import machine, speed
from cdb.train.batches import Sampling, steps_per_unit, train_batches, unit_batches
from cdb.train.config import TrainerConfig
from cdb.train.evaluate import EvalResult, evaluate
from cdb.train.placement import Local

log = logging.getLogger(__name__)


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


CHECKPOINT_KEYS = ("model", "optimizer", "weighting", "unit", "best", "torch_rng")
# The checkpoint rule: last.pt is written at every trainer.checkpoint_every-th validation, at the end, and at any
# validation that comes CHECKPOINT_MINUTES or more after the last one written, so that an interruption loses at
# most that much training beyond one validation interval, whatever trainer.checkpoint_every says.
CHECKPOINT_MINUTES = 5


def validation_units(cfg: TrainerConfig, upto: int) -> list[int]:
    """The unit counts after which a run of `cfg` validates, up to `upto` (every eval_every units and at the end)."""
    units = list(range(cfg.eval_every, min(upto, cfg.length) + 1, cfg.eval_every))
    if upto >= cfg.length and (not units or units[-1] != cfg.length):
        units.append(cfg.length)
    return units


class RunState:
    """Train `model` on `data` with `criterion`, writing everything to `run_dir` (`fit` trains it alone).

    dist: None (one process) or a cdb.train.distributed.Dist (one of several data-parallel processes).
    """

    def __init__(self, model: torch.nn.Module, data: DatasetSplits, criterion: Criterion, cfg: TrainerConfig,
                 run_dir: str | Path, seed: int = 0, dist=None, settings: dict | None = None):
        self.cfg, self.data, self.criterion, self.seed = cfg, data, criterion, int(seed)
        self.settings = settings  # what this run computes (cdb.build.fingerprint), recorded in its checkpoints
        self.run_dir = Path(run_dir)
        self.place = Local(cfg.device) if dist is None else dist
        self.device = self.place.device
        speed.configure_backends(cfg, self.device)
        self.model = speed.prepare_model(model.to(self.device), cfg)
        # self.net trains alone (DDP and/or compiled); evaluation uses self.eval_net, which is never DDP-wrapped:
        # each rank evaluates its own shard, so no collective may hide in its forward
        self.net = speed.compile_model(self.place.wrap(self.model), cfg)
        self.eval_net = self.net if self.place.world_size == 1 else speed.compile_model(self.model, cfg)
        self.autocast = speed.autocast(cfg, self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
        self.steps_per_unit = steps_per_unit(len(data.train), cfg.batch_size, cfg.unit)
        self.sampling = None if cfg.sampler == "instance" else \
            Sampling(cfg.sampler, targets_of(data.train), data.num_classes, cfg.length)  # trainer.sampler
        self.unit = 0          # units completed
        self.best = {"val_balanced_accuracy": -1.0, "unit": None}
        self.board = None      # the TensorBoard log (trainer.tensorboard=true), opened at the first validation
        self.start_unit = 0    # where this session's training began (a resumed run: its checkpoint's unit)
        self.trained_on: list[dict] = []  # every session that trained part of the run: where it began, machine.describe
        self.record: dict[str, str] = {}  # {file name: text} of the run's record (config.yaml, data.json), written by
        #                                   begin() once a resumed run's checkpoint is known to be its own
        self._data_digest: str | None = None
        self.saved_at = time.monotonic()  # when last.pt was last written (or the run began)
        self.saved_unit: int | None = None  # the unit of the last checkpoint written or loaded
        self.rows = 0  # validation rows this run has in log.jsonl

    @property
    def data_digest(self) -> str:
        """cdb.data.base.fingerprint of this run's splits (computed once)."""
        if self._data_digest is None:
            self._data_digest = fingerprint(self.data)
        return self._data_digest

    # ---- paths and state -------------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.place.is_main

    @property
    def dist(self):
        """The DDP placement, or None in one process."""
        return None if isinstance(self.place, Local) else self.place

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
            "settings": self.settings,
            "trained_on": list(self.trained_on),
            "data": self.data_digest,
        }

    def own_checkpoint(self, path: Path) -> dict:
        """The checkpoint at `path`, refused in one line when it is not a whole checkpoint of this run: keys
        missing, or recorded settings that differ from this run's (a file copied from another run)."""
        state = io.load_checkpoint(path)
        missing = [k for k in CHECKPOINT_KEYS if k not in state]
        if missing:
            raise CdbError(f"checkpoint {path} lacks {', '.join(repr(k) for k in missing)}: it is not a whole "
                           "checkpoint of this run; remove that file (or the run directory) to start over")
        theirs, diff = state.get("settings"), []
        if theirs is not None and self.settings is not None and theirs != self.settings:
            # a longer trainer.length extends a run (resume continues it); a shorter one cannot be this run's
            diff = sorted(k for k in set(theirs) | set(self.settings) if theirs.get(k) != self.settings.get(k)
                          and not (k == "trainer.length" and (theirs.get(k) or 0) <= (self.settings.get(k) or 0)))
        if diff:
            k = diff[0]
            raise CdbError(f"checkpoint {path} belongs to another run: {k} is {theirs.get(k)!r} there and "
                           f"{self.settings.get(k)!r} here" + (f" ({len(diff) - 1} more settings differ)"
                                                             if len(diff) > 1 else "")
                           + "; resume with that run's settings, or remove the checkpoint to start this run over")
        if state.get("data") not in (None, self.data_digest):  # absent in checkpoints written before it existed
            raise CdbError(f"checkpoint {path} was trained on other data: the splits built now differ from those the "
                           "run started with (another data_root / CDB_DATA_ROOT, or changed files); point data_root "
                           "back at the data it started with, or remove that run directory to start it over")
        return state

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.criterion.weighting.load_state_dict(state["weighting"])
        self.unit, self.best = int(state["unit"]), dict(state["best"])
        torch.set_rng_state(state["torch_rng"])
        self.trained_on = list(state.get("trained_on") or [])  # absent in checkpoints written before it existed

    def index_batches(self, u: int) -> list:
        """The index batches of every step of unit u (cdb.train.batches.unit_batches), this process's share under
        DDP."""
        cfg = self.cfg
        return self.place.shard_batches(unit_batches(len(self.data.train), cfg.batch_size, cfg.unit, u, self.seed,
                                                     self.sampling))

    def batches(self, u: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, object]]:
        """(inputs, labels, index batch) of every step of unit u, this process's share under DDP."""
        cfg = self.cfg
        batches = self.index_batches(u)
        stream = train_batches(self.data, batches, self.device, self.seed, u * self.steps_per_unit,
                               cfg.num_workers, cfg.data_on_device)
        for (x, y), b in zip(stream, batches):
            yield speed.prepare_input(x, cfg), y, b

    def val_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The validation batch meta weightings use at `step`: a seeded stream over the validation split, a
        function of (seed, step) like the training batches, so a resumed run draws the same ones."""
        n = len(self.data.val)
        idx = unit_batches(n, min(self.cfg.batch_size, n), "step", step, self.seed + 7)
        return val_batch_tensors(self.data, idx[0], self.device)

    # ---- one validation --------------------------------------------------------------------------------
    def validate(self, split) -> EvalResult:
        """Counts over the whole split; under DDP each rank counts a disjoint shard and the counts are summed."""
        res = evaluate(self.eval_net, self.place.shard_split(split), self.data, self.device, self.cfg.eval_batch_size,
                       autocast=self.autocast, on_device=self.cfg.data_on_device, num_workers=self.cfg.num_workers)
        return self.place.reduce_eval(res)

    # ---- the files of the run --------------------------------------------------------------------------
    def begin(self, resume: bool = False) -> dict | None:
        """Load the last checkpoint when resuming (every rank loads the same file); the metrics if already done."""
        last, metrics = self.path(LAST), self.path(METRICS)
        recorded = io.read_json(metrics) if metrics.exists() else {}
        if recorded.get("status") == "diverged":  # deterministic on CPU: training it again would only diverge again
            raise CdbError(f"{self.run_dir} diverged earlier ({recorded.get('message', '')}); it is not trained "
                           "again: remove that directory to start it over")
        found = self.place.same_on_all(last.exists(), str(last))
        if found:
            if not resume:
                raise already_holds_a_run(self.run_dir)
            self.load_state(self.own_checkpoint(last))
            self.saved_unit = self.unit
            if self.unit >= self.cfg.length and metrics.exists():
                self.check_finished()
                log.info("%s: finished earlier, reported from metrics.json", self.run_dir)
                return recorded
            log.info("%s: resumed at unit %d", self.run_dir, self.unit)
        elif resume and io.read_jsonl(self.path(LOG)):
            log.warning("%s: no checkpoint was saved before it stopped, so it starts over from unit 0 (the "
                        "validations it logged are replaced)", self.run_dir)
        if self.is_main and not metrics.exists():  # the record of a run that goes on (a finished one keeps its own)
            for name, text in self.record.items():
                io.atomic_write_text(self.path(name), text)
        self.start_unit = self.unit
        self.trained_on.append({"from_unit": self.unit, **machine.describe(self.device)})  # this session
        log_rows = [r for r in io.read_jsonl(self.path(LOG)) if r["unit"] <= self.unit]
        expected = len(validation_units(self.cfg, self.unit))
        if len(log_rows) < expected:
            log.warning("%s: %s holds %d of the %d validations up to unit %d (truncated or deleted): its curves have "
                        "a gap there; training goes on from the checkpoint", self.run_dir, LOG, len(log_rows),
                        expected, self.unit)
        if self.is_main:
            io.write_jsonl(self.path(LOG), log_rows)
        self.rows = len(log_rows)
        return None

    def check_finished(self) -> None:
        """A finished run is called done only when its record can be read: a config.yaml that is there but not a YAML
        mapping (a hand edit, a damaged disk) would stop every report that reads it."""
        import yaml

        path = self.path(CONFIG)
        if not path.exists():  # a run built without Hydra's record (cdb-table leaves such a run out, saying so)
            return
        try:
            ok = isinstance(yaml.safe_load(path.read_text()), dict)
            reason = "not a mapping of settings"
        except (yaml.YAMLError, ValueError, OSError) as exc:
            ok, reason = False, str(exc).splitlines()[0]
        if not ok:
            raise CdbError(f"{path} cannot be read as the run's settings ({reason}); the run is finished but its "
                           "record is damaged: repair that file, or remove that run directory to train it again")

    def after_units(self, loss_sum: torch.Tensor, count: int, elapsed: float,
                    val: EvalResult | Exception | None = None) -> dict:
        """At a validation boundary (self.unit just reached): check the training loss, validate, update the
        weighting from class-wise validation accuracy, log, keep the best, checkpoint. Returns the log row.

        loss_sum is this run's summed (logged) loss over `count` steps, still on the device: reading it here is
        the only host synchronisation of the units before it. val: this run's validation counts (or the error
        its validation raised) when its pack validated all its runs at once; None: validate here.
        """
        total = float(self.place.all_reduce_sum(loss_sum))  # under DDP each rank holds a share of each step's loss
        if not math.isfinite(total):
            steps = [max((self.unit - self.cfg.eval_every) * self.steps_per_unit, 0), self.unit * self.steps_per_unit]
            message = (f"training loss of {self.run_dir.name} became non-finite between steps {steps[0]} and "
                       f"{steps[1]}; lower trainer.lr or check the loss settings")
            if self.is_main:  # the outcome is recorded: tables count the run as diverged, resume does not retrain it
                io.atomic_write_json(self.path(METRICS), {"status": "diverged", "steps": steps,
                                                                 "message": message})
            self.close_board()
            raise CdbError(message)
        if isinstance(val, Exception):
            raise val
        res = self.validate(self.data.val) if val is None else val
        acc = res.class_accuracy
        info = self.criterion.weighting.update(self.unit, acc, res.confusion.sum(1))
        row = {
            "unit": self.unit,
            "step": self.unit * self.steps_per_unit,
            "lr": self.cfg.lr_at(self.unit - 1),
            "train_loss": total / max(count, 1),
            "val_balanced_accuracy": res.balanced_accuracy,
            "val_class_accuracy": [100.0 * float(a) for a in acc],
            **info,
            "time_s": round(elapsed, 3),
        }
        log.info("%s unit %d: loss %.4f, val balanced acc %.2f, weights %s, tau %s", self.run_dir.name, self.unit,
                 row["train_loss"], row["val_balanced_accuracy"], [round(w, 4) for w in row["weights"]],
                 row.get("tau"))
        improved = row["val_balanced_accuracy"] > self.best["val_balanced_accuracy"]
        if improved:
            self.best = {"val_balanced_accuracy": row["val_balanced_accuracy"], "unit": self.unit}
        if self.is_main:
            if improved:
                io.atomic_torch_save({"model": self.model.state_dict(), "unit": self.unit},
                                     self.path(BEST))
            with open(self.path(LOG), "a") as f:
                f.write(json.dumps(row) + "\n")
            self.rows += 1
            self.tensorboard_row(row)
            n_val = self.unit // self.cfg.eval_every
            if (n_val % self.cfg.checkpoint_every == 0 or self.unit >= self.cfg.length
                    or time.monotonic() - self.saved_at >= 60 * CHECKPOINT_MINUTES):
                io.atomic_torch_save(self.state(), self.path(LAST))
                self.saved_at, self.saved_unit = time.monotonic(), self.unit
        return row

    def finish(self, elapsed: float) -> dict:
        """Test the last (and best) checkpoint, write metrics.json and the final checkpoint; the metrics."""
        groups = self.data.info.get("groups")
        out = {"status": "complete", "selected": self.cfg.select, "checkpoints": {}}
        best = self.path(BEST)
        self.place.barrier()  # rank 0 has written best.pt (after the last validation) before any rank looks
        found = self.place.same_on_all(best.exists(), str(best))
        best_state = io.load_checkpoint(best) if found else None
        last_state = {k: v.clone() for k, v in self.model.state_dict().items()}
        for name, state in (("last", None), ("best", best_state)):
            if name == "best":
                if state is None:
                    continue
                self.model.load_state_dict(state["model"])
            val, test = self.validate(self.data.val), self.validate(self.data.test)
            names = self.data.class_names
            out["checkpoints"][name] = {
                "unit": self.unit if name == "last" else state["unit"],
                "val": summarize(val.confusion, val.topk_correct, groups, names),
                "test": summarize(test.confusion, test.topk_correct, groups, names),
                "test_confusion": test.confusion.tolist(),
            }
        self.model.load_state_dict(last_state)
        sel = out["checkpoints"].get(self.cfg.select) or out["checkpoints"]["last"]
        out["test"] = sel["test"]
        out["train_class_counts"] = self.data.class_counts.tolist()
        out["class_names"] = self.data.class_names
        out["final_weights"] = self.criterion.weighting.class_weights().tolist()
        out["train_wall_time_s"] = round(elapsed, 2)  # of this invocation (a resumed run counts from the resume)
        out["trained_on"] = list(self.trained_on)  # each session: the unit it started from, its software and CPU
        out["collapsed"] = run_collapsed(out)  # {class: [splits]} of the reported checkpoint; {} when none
        if self.is_main:
            io.atomic_torch_save(self.state(complete=True), self.path(LAST))
            io.atomic_write_json(self.path(METRICS), out)
            log.info("%s: %s", self.run_dir.name, result_line(out))
            line = collapse_line(out)
            if line:  # run.log only: cdb-run (and the pack launcher) end their output with the same line
                log.warning("%s: %s", self.run_dir.name, line, extra={"console": False})
            if self.board is not None:
                self.board.final(self.hyperparameters(), out["test"], self.unit)
        self.close_board()
        return out

    # ---- TensorBoard (trainer.tensorboard=true; rank 0 only) -------------------------------------------
    def tensorboard_row(self, row: dict) -> None:
        """Log one validation to RUN_DIR/tensorboard/ (cdb.train.tensorboard), opening the log at the first one."""
        if not self.cfg.tensorboard:
            return
        if self.board is None:
            from cdb.train.tensorboard import Board

            # a resumed run drops what an earlier session logged after its checkpoint (steps > start_unit)
            self.board = Board(self.path(TENSORBOARD), self.data.class_names,
                               purge_step=self.start_unit + 1 if self.start_unit else None)
        self.board.validation(row)

    def hyperparameters(self) -> dict:
        """The run's settings for TensorBoard's hparams: what the run computes (cdb.build's fingerprint), or for a
        RunState built without one, the trainer settings and the seed."""
        if self.settings is not None:
            return dict(self.settings)
        from dataclasses import asdict

        return {"seed": self.seed, **{f"trainer.{k}": v for k, v in asdict(self.cfg).items()}}

    def close_board(self) -> None:
        if self.board is not None:
            self.board.close()
            self.board = None


def val_batch_tensors(data: DatasetSplits, idx: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """One validation batch for meta steps: no augmentation, the same normalisation as evaluation."""
    split = data.val
    if isinstance(split, TensorSplit):
        return normalize(split.x[idx], data.mean, data.std).to(device), split.y[idx].to(device)
    xs, ys = zip(*(split[int(j)] for j in idx))
    return torch.stack(xs).to(device), torch.as_tensor(ys).to(device)
