"""One run: its model, optimizer, data, loss, weighting, run directory and the files it writes.

A `RunState` holds everything that belongs to one run and nothing about how
its steps are computed: cdb.train.loop trains it alone or in a pack of K >= 2
runs (cdb.train.pack) and calls `after_units` at each validation.
Every piece of state a resumed run needs is in its checkpoint; the order of
batches is a function of (seed, step), so nothing about the data stream has
to be saved.
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Iterator

import torch

from cdb.data.base import DatasetSplits, fingerprint, targets_of
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
from cdb.train.resume import check_finished, own_checkpoint

log = logging.getLogger(__name__)


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
    """One run: `model` trained on `data` with `criterion`, everything written to `run_dir` (cdb.train.loop trains it).

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
            self.load_state(own_checkpoint(last, self.settings, self.data_digest))
            self.saved_unit = self.unit
            if self.unit >= self.cfg.length and metrics.exists():
                check_finished(self.path(CONFIG))
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

    # ---- a validation: the CDB feedback loop (validation -> class weights -> the next steps' loss) ---------
    def after_units(self, loss_sum: torch.Tensor, count: int, elapsed: float, val: EvalResult | Exception) -> dict:
        """At a validation boundary (self.unit just reached): check the training loss, take the validation, update
        the weighting from class-wise validation accuracy, log, keep the best, checkpoint. Returns the log row.

        loss_sum: this run's summed (logged) loss over `count` steps, still on the device (reading it is the only
        host synchronisation of the units before it). val: this run's validation counts, or the error its
        validation raised. The loop's loss reads the new class weights after this (cdb.train.loss).
        """
        train_loss = self.check_divergence(loss_sum) / max(count, 1)
        if isinstance(val, Exception):
            raise val
        info = self.criterion.weighting.update(self.unit, val.class_accuracy, val.confusion.sum(1))
        row = self.log_row(train_loss, val, info, elapsed)
        self.save(row)
        return row

    def check_divergence(self, loss_sum: torch.Tensor) -> float:
        """The summed training loss (over ranks under DDP); a non-finite one is recorded and raised as a CdbError."""
        total = float(self.place.all_reduce_sum(loss_sum))  # under DDP each rank holds a share of each step's loss
        if math.isfinite(total):
            return total
        steps = [max((self.unit - self.cfg.eval_every) * self.steps_per_unit, 0), self.unit * self.steps_per_unit]
        message = (f"training loss of {self.run_dir.name} became non-finite between steps {steps[0]} and "
                   f"{steps[1]}; lower trainer.lr or check the loss settings")
        if self.is_main:  # the outcome is recorded: tables count the run as diverged, resume does not retrain it
            io.atomic_write_json(self.path(METRICS), {"status": "diverged", "steps": steps, "message": message})
        self.close_board()
        raise CdbError(message)

    def log_row(self, train_loss: float, val: EvalResult, info: dict, elapsed: float) -> dict:
        """The log.jsonl row of this validation (also said in run.log)."""
        row = {
            "unit": self.unit,
            "step": self.unit * self.steps_per_unit,
            "lr": self.cfg.lr_at(self.unit - 1),
            "train_loss": train_loss,
            "val_balanced_accuracy": val.balanced_accuracy,
            "val_class_accuracy": [100.0 * float(a) for a in val.class_accuracy],
            **info,
            "time_s": round(elapsed, 3),
        }
        log.info("%s unit %d: loss %.4f, val balanced acc %.2f, weights %s, tau %s", self.run_dir.name, self.unit,
                 row["train_loss"], row["val_balanced_accuracy"], [round(w, 4) for w in row["weights"]],
                 row.get("tau"))
        return row

    def save(self, row: dict) -> None:
        """Keep the best validation; rank 0 writes best.pt when it improved, the row to log.jsonl (and TensorBoard),
        and last.pt by the checkpoint rule (CHECKPOINT_MINUTES)."""
        improved = row["val_balanced_accuracy"] > self.best["val_balanced_accuracy"]
        if improved:
            self.best = {"val_balanced_accuracy": row["val_balanced_accuracy"], "unit": self.unit}
        if not self.is_main:
            return
        if improved:
            io.atomic_torch_save({"model": self.model.state_dict(), "unit": self.unit}, self.path(BEST))
        with open(self.path(LOG), "a") as f:
            f.write(json.dumps(row) + "\n")
        self.rows += 1
        self.tensorboard_row(row)
        n_val = self.unit // self.cfg.eval_every
        if (n_val % self.cfg.checkpoint_every == 0 or self.unit >= self.cfg.length
                or time.monotonic() - self.saved_at >= 60 * CHECKPOINT_MINUTES):
            io.atomic_torch_save(self.state(), self.path(LAST))
            self.saved_at, self.saved_unit = time.monotonic(), self.unit

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

