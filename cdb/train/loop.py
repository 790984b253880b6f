"""The training loop, written once: train a pack of K >= 1 runs for a unit of steps, validate each, repeat.

A single run is a pack of one and trains its own module (DDP-wrapped and/or
compiled as configured), exactly as a plain loop would. K > 1 runs of one
architecture train as one wide network (cdb.models.packed: grouped
convolutions, batched matrix multiplies), each with its own parameters,
optimizer state, data order, loss, weights and run directory; one SGD steps
all of them (SGD is element-wise, so this is K independent SGDs). At every
validation the packed weights are copied into each run's own module and
optimizer, so validation, logging and checkpoints are the run's own
(cdb.train.run.RunState). Inside a unit nothing is read back to the host:
losses are summed on the device and checked at the validation.
"""
from __future__ import annotations

import functools
import logging
import os
import sys
import time

import torch
from tqdm.auto import tqdm

from cdb.data.augment import to_device
from cdb.core.errors import CdbError, ConfigError, Interrupted, Terminated, user_message
from cdb.losses.functional import cross_entropy, reduce_weighted
from cdb.losses.weighting import Weighting
from cdb.models.packed import PackedModel, can_pack
from cdb.train import speed
from cdb.train.batches import PackFeed
from cdb.train.config import show_progress
from cdb.train.progress import Reporter, start_line
from cdb.train.evaluate import EvalResult, evaluate_pack
from cdb.train.run import RunState, StepContext

log = logging.getLogger(__name__)


def pack_refusal(trainers: list[RunState]) -> str | None:
    """Why these runs cannot train as one pack, or None when they can."""
    t0 = trainers[0]
    if len(trainers) == 1:
        return None
    for t in trainers:
        if t.place.world_size > 1:
            return "a pack of several runs trains in one process: leave trainer.devices at 1"
        if t.cfg != t0.cfg:
            return "runs in one pack need the same trainer settings"
        if t.device != t0.device:
            return "runs in one pack need one device"
        if t.cfg.unit == "epoch" and len(t.data.train) != len(t0.data.train):  # step units: batch_size each step
            return ("runs in one pack need training splits of one size (the same batches per epoch), unless "
                    "trainer.unit=step")
        if type(t.criterion.weighting).sample_weights is not Weighting.sample_weights:
            return (f"weighting {type(t.criterion.weighting).__name__} takes a meta step through its own model: "
                    "it trains as a pack of one")
        if type(t.model) is not type(t0.model) or t.model.state_dict().keys() != t0.model.state_dict().keys():
            return "runs in one pack need the same model"
        if any(a.shape != b.shape for a, b in zip(t.model.state_dict().values(), t0.model.state_dict().values())):
            return "runs in one pack need the same model shapes (number of classes, input size)"
        if tuple(t.data.input_shape) != tuple(t0.data.input_shape):  # ResNet-32's weights fit any image size
            return "runs in one pack need inputs of one shape"
    if not can_pack(t0.model):
        return f"model {type(t0.model).__name__} has no packed form yet: it trains as a pack of one"
    return None


def fusable(t: RunState) -> bool:
    """Whether a run's loss can join the pack's one batched loss: plain CE, class weights, mean reduction."""
    c = t.criterion
    return (c.base is cross_entropy and c.reduction == "mean" and t.place.world_size == 1
            and type(c.weighting).sample_weights is Weighting.sample_weights)


def fused_ce(z: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-run mean_i(w_{k, y_ki} * CE_ki) for R runs at once (a few kernels instead of a few per run).

    Each row's CE and weight are the ones the run's own criterion computes; the mean runs over each run's
    batch only. z: logits (R, B, C); y: targets (R, B); weights: (R, C). Returns (R,).
    """
    r, b, c = z.shape
    ce = cross_entropy(z.reshape(r * b, c), y.reshape(-1)).view(r, b)
    return reduce_weighted(ce, weights.gather(1, y), "mean", dim=1)


class Pack:
    """Train `trainers` (K >= 1 runs) together; each gets what RunState.fit alone would give it."""

    def __init__(self, trainers: list[RunState]):
        if not trainers:
            raise ConfigError("a pack needs at least one run")
        why = pack_refusal(trainers)
        if why:
            raise ConfigError(why)
        self.trainers = trainers
        self.cfg, self.device = trainers[0].cfg, trainers[0].device

    # ---- the network and optimizer of the pack -----------------------------------------------------------
    def start(self) -> "Pack":
        """Assemble every run's network and optimizer for `train_units` without fit (benchmarks, tests)."""
        self._assemble(self.trainers)
        return self

    def _assemble(self, trainers: list[RunState]) -> None:
        """One run: its own net and optimizer. K runs: a packed model and one SGD over its packed tensors, loaded
        with the runs' weights and momentum (so a resumed pack continues each run)."""
        self.active = trainers
        if len(trainers) == 1:
            t = trainers[0]
            self.packed, self.net, self.optimizer, self.feed = None, t.net, t.optimizer, None
            return
        datas = [t.data for t in trainers]  # one tensor of K batches per step (cdb.train.batches.PackFeed)
        self.feed = PackFeed(datas, [t.seed for t in trainers], self.device, self.cfg.data_on_device) \
            if PackFeed.fits(datas) else None
        cfg = self.cfg
        self.packed = speed.prepare_model(PackedModel([t.model for t in trainers]).to(self.device), cfg)
        self.net = speed.compile_model(self.packed, cfg)
        self.optimizer = torch.optim.SGD(self.packed.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
        for name, p in self.packed.net.named_parameters():
            bufs = [t.optimizer.state.get(dict(t.model.named_parameters())[name], {}).get("momentum_buffer")
                    for t in trainers]
            if all(b is not None for b in bufs):
                buf = torch.zeros_like(p)
                for k, b in enumerate(bufs):
                    self.packed.run_view(name, buf, k).copy_(b)
                self.optimizer.state[p]["momentum_buffer"] = buf

    @torch.no_grad()
    def _disassemble(self, lr: float) -> None:
        """Each run's slice of the packed weights and momentum into its own module and optimizer."""
        if self.packed is None:
            return
        self.packed.copy_to([t.model for t in self.active])
        for name, p in self.packed.net.named_parameters():
            buf = self.optimizer.state.get(p, {}).get("momentum_buffer")
            for k, t in enumerate(self.active):
                own = dict(t.model.named_parameters())[name]
                if buf is not None:
                    t.optimizer.state[own]["momentum_buffer"] = self.packed.run_view(name, buf, k).clone()
        for t in self.active:
            for g in t.optimizer.param_groups:
                g["lr"] = lr

    def validate(self) -> list[EvalResult | CdbError] | None:
        """Every active run's validation counts from one packed forward per batch (cdb.train.evaluate.evaluate_pack),
        or None for a pack of one (the run validates its own module, as alone). Runs whose validation splits are one
        object read each batch once."""
        if self.packed is None:
            return None
        t0 = self.active[0]
        return evaluate_pack(self.net, [(t.data.val, t.data) for t in self.active], self.device,
                             self.cfg.eval_batch_size, autocast=t0.autocast, on_device=self.cfg.data_on_device,
                             num_workers=self.cfg.num_workers)

    def steps(self, u: int):
        """Each step of unit u: every active run's (inputs, labels, index batch), in run order."""
        if self.feed is None:
            yield from zip(*(t.batches(u) for t in self.active))
            return
        first = u * self.active[0].steps_per_unit
        for x, y, bs in self.feed.steps([t.index_batches(u) for t in self.active], first):
            yield [(speed.prepare_input(xk, self.cfg), yk, b) for xk, yk, b in zip(x.unbind(0), y.unbind(0), bs)]

    def forward(self, xs: list[torch.Tensor]) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        """Logits of each run on its own batch: (all of them as one (K, B, C) tensor or None for one run, a list)."""
        if self.packed is None:
            return None, [self.net(xs[0])]
        full = self.net(xs)
        return full, list(full.unbind(0))

    # ---- the loop ----------------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> list[dict | Exception]:
        """Train every run to trainer.length; each run's metrics (or the error that stopped it), in order."""
        results: list = []
        for t in self.trainers:
            try:
                results.append(t.begin(resume))
            except Exception as exc:  # this run cannot start (e.g. it diverged earlier); the others go on
                results.append(exc)
        todo = [t for t, r in zip(self.trainers, results) if r is None]
        by_unit: dict[int, list[RunState]] = {}
        for t in todo:  # runs resumed from different units train as separate packs
            by_unit.setdefault(t.unit, []).append(t)
        done: dict[int, dict | CdbError] = {}
        for group in by_unit.values():
            done.update(self._train(group))
        return [r if r is not None else done[id(t)] for t, r in zip(self.trainers, results)]

    def _train(self, trainers: list[RunState]) -> dict[int, dict | CdbError]:
        cfg, spu = self.cfg, trainers[0].steps_per_unit
        self._assemble(trainers)
        unit, out = trainers[0].unit, {}
        one = len(trainers) == 1
        shown = show_progress(cfg.progress, tty=sys.stderr.isatty(), env=os.environ, sweep=not one)
        bar = tqdm(total=cfg.length * spu, initial=unit * spu, disable=not (shown and trainers[0].is_main),
                   desc=trainers[0].run_dir.name if one else f"pack of {len(trainers)}", unit="step",
                   dynamic_ncols=True, mininterval=1.0)
        where = str(trainers[0].run_dir) if one else f"pack of {len(trainers)} ({trainers[0].run_dir.parent.parent})"
        # a line when training starts; without a bar, a progress line now and then (cdb/train/progress.py)
        said = Reporter(where, cfg.length, unit, quiet=not trainers[0].is_main)
        said.say(start_line(where, trainers[0].data.name, len(trainers[0].data.train), cfg.length, cfg.unit,
                            str(trainers[0].device), unit))
        said.quiet = said.quiet or not bar.disable
        t0 = time.time()
        try:
            while unit < cfg.length and self.active:
                u_end = min(unit + cfg.eval_every, cfg.length)
                loss_sum, count = self.train_units(unit, u_end, bar)
                unit = u_end
                self._disassemble(cfg.lr_at(unit - 1))
                vals = self.validate() or [None] * len(self.active)
                alive = []
                for k, t in enumerate(self.active):
                    t.unit = unit
                    try:
                        row = t.after_units(loss_sum[k], count, time.time() - t0, vals[k])
                    except Exception as exc:  # foreseen (CdbError) or not: this run stops, the others go on
                        t.close_board()
                        if one:
                            raise
                        log.error("%s: %s", t.run_dir, user_message(exc) or f"{type(exc).__name__}: {exc}",
                                  exc_info=not isinstance(exc, CdbError))
                        out[id(t)] = exc
                        continue
                    alive.append(t)
                    if one:
                        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{row['val_balanced_accuracy']:.2f}",
                                        tau=f"{row.get('tau', 0):.3g}")
                said.validated(unit, row["val_balanced_accuracy"] if one and alive else None)
                if not alive:
                    self.active = []
                elif len(alive) != len(self.active):
                    self._assemble(alive)
            bar.close()
            for t in self.active:  # the final tests: a signal here is an interruption like any other
                out[id(t)] = t.finish(time.time() - t0)
        except KeyboardInterrupt as exc:
            bar.close()
            for t in trainers:
                t.close_board()
            term = isinstance(exc, Terminated)
            raise Interrupted(f"{f'terminated ({exc.name})' if term else 'interrupted'}; {kept(trainers)}",
                              exc.exit_code if term else 2) from None
        return out

    def train_units(self, u0: int, u1: int, bar=None) -> tuple[torch.Tensor, int]:
        """Train units [u0, u1) of every active run: (summed logged loss per run, on the device; steps taken).

        No host synchronisation: no .item(), no branch on a tensor value (tests/unit/train/test_pack_training.py counts them).
        """
        cfg, active = self.cfg, self.active
        self.net.train()
        loss_sum, count = torch.zeros(len(active), device=self.device), 0
        autocast = active[0].autocast
        fused = [k for k, t in enumerate(active) if fusable(t)] if len(active) > 1 else []
        fused = fused if len(fused) > 1 else []
        weights = to_device(torch.stack([active[k].criterion.weighting.class_weights() for k in fused]), self.device) \
            if fused else None  # (runs, classes): CDB weights change only at validations, between calls
        for u in range(u0, u1):
            lr = cfg.lr_at(u)
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            first = u * active[0].steps_per_unit
            for i, items in enumerate(self.steps(u)):
                step = first + i
                xs = [x for x, _, _ in items]
                if autocast:
                    with autocast():
                        full, outs = self.forward(xs)
                else:
                    full, outs = self.forward(xs)
                total, logged = None, [None] * len(active)
                if fused:  # runs with plain CE, class weights and mean reduction: one batched loss for all of them
                    every = len(fused) == len(active)
                    per_run = fused_ce(full if every else torch.stack([outs[k] for k in fused]),
                                       torch.stack([items[k][1] for k in fused]), weights)
                    total = per_run.sum()
                    if every:
                        self.optimizer.zero_grad(set_to_none=True)
                        total.backward()
                        self.optimizer.step()
                        loss_sum += per_run.detach()
                        count += 1
                        if bar is not None:
                            bar.update(1)
                        continue
                    for j, k in enumerate(fused):
                        logged[k] = per_run[j].detach()
                for k, (t, (x, y, b)) in enumerate(zip(active, items)):
                    if logged[k] is not None:
                        continue
                    ctx = StepContext(self.net, x, y, lr, t.criterion, functools.partial(t.val_batch, step), step)
                    loss, logged[k] = t.place.loss(t.criterion, outs[k], y, ctx, b)
                    total = loss if total is None else total + loss  # d total / d loss_k = 1: each its own gradient
                self.optimizer.zero_grad(set_to_none=True)
                total.backward()
                self.optimizer.step()
                loss_sum += torch.stack(logged)
                count += 1
                if bar is not None:
                    bar.update(1)
        return loss_sum, count


def kept(trainers: list[RunState]) -> str:
    """What an interruption leaves of these runs, said as it is: cdb.rundir.claims keeps every run that logged a
    validation (with or without a checkpoint) and removes only a new one that logged nothing."""
    saved = [t for t in trainers if t.saved_unit is not None]
    bare = [t for t in trainers if t.saved_unit is None and t.rows]
    gone = len(trainers) - len(saved) - len(bare)

    def who(some: list) -> str:
        return "the run" if len(trainers) == 1 else "every run" if len(some) == len(trainers) else \
            f"{len(some)} of the {len(trainers)} runs"

    if gone == len(trainers):
        return (f"{'the run had not' if len(trainers) == 1 else 'no run had'} logged a validation yet, so nothing was "
                "kept: run the same command again to start over")
    parts = []
    if saved:
        units = sorted({t.saved_unit for t in saved})
        at = f"unit {units[0]}" if len(units) == 1 else f"units {units[0]}-{units[-1]}"
        parts.append(f"{who(saved)} kept its log and its last checkpoint ({at})")
    if bare:
        parts.append(f"{who(bare)} kept its logged validations but had no checkpoint yet (resume=true starts it over "
                     "from unit 0)")
    if gone:
        parts.append(f"{gone} that had logged nothing {'was' if gone == 1 else 'were'} removed")
    return "; ".join(parts) + ": run the same command with resume=true to continue"


def train_alone(state: RunState, resume: bool = False) -> dict:
    """Train one run alone (a pack of one); its final metrics, or the CdbError that stopped it, raised."""
    out = Pack([state]).fit(resume)[0]
    if isinstance(out, Exception):
        raise out
    return out
