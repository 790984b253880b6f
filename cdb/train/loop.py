"""The training loop, written once: train runs for a unit of steps, validate each, repeat.

What trains is a group: one run alone (`Alone`: its own module, DDP-wrapped and/or compiled as configured, its
optimizer, batches and loss) or a pack of K >= 2 runs of one architecture as one wide network
(cdb.train.pack.Pack). Both give `train_units` the same things: `net`, `optimizer`, `steps(u)` (each step's inputs,
labels and index batches), `loss` (each run's loss, (K,): cdb.train.loss) and `autocast`. At every validation
`hand_back` puts each run's weights into its own module, `validate` gives each run's counts, and each run's
`RunState.after_units` checks its loss, updates its weighting, logs and checkpoints; then the group's loss reads the
new class weights. Inside a unit nothing is read back to the host: losses are summed on the device and checked at
the validation.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time

import torch
from tqdm.auto import tqdm

from cdb.core.errors import CdbError, ConfigError, Interrupted, Terminated, user_message
from cdb.train.config import show_progress
from cdb.train.evaluate import EvalResult
from cdb.train.loss import RunLoss
from cdb.train.pack import Pack, pack_refusal
from cdb.train.progress import Reporter, start_line
from cdb.train.run import RunState

log = logging.getLogger(__name__)


class Alone:
    """One run trained alone: its own net, optimizer, batches and loss (what a plain PyTorch loop would use)."""

    def __init__(self, run: RunState):
        self.runs, self.cfg, self.device = [run], run.cfg, run.device
        self.net, self.optimizer, self.steps = run.net, run.optimizer, run.batches
        self.steps_per_unit, self.autocast = run.steps_per_unit, run.autocast or contextlib.nullcontext
        self.loss = RunLoss(run, run.net)

    def hand_back(self, lr: float) -> None:
        """Nothing to do: the run's own module and optimizer are the ones trained."""

    def validate(self) -> list[EvalResult | Exception]:
        """The run's validation counts (under DDP summed over ranks), or the error its validation raised."""
        run = self.runs[0]
        try:
            return [run.validate(run.data.val)]
        except Exception as exc:  # raised by after_units, once the training loss has been checked
            return [exc]


def assemble(runs: list[RunState]) -> Alone | Pack:
    """What trains `runs` (K >= 1) in one loop: the run alone, or the runs as one pack."""
    return Alone(runs[0]) if len(runs) == 1 else Pack(runs)


def train_units(group: Alone | Pack, u0: int, u1: int, bar=None) -> tuple[torch.Tensor, int]:
    """Train units [u0, u1) of every run of `group`: (summed logged loss per run, on the device; steps taken).

    No host synchronisation: no .item(), no branch on a tensor value (tests/unit/train/test_pack_training.py counts them).
    """
    net, optimizer, loss_fn = group.net, group.optimizer, group.loss
    net.train()
    loss_sum, count = torch.zeros(len(group.runs), device=group.device), 0
    for u in range(u0, u1):
        lr = group.cfg.lr_at(u)
        for g in optimizer.param_groups:
            g["lr"] = lr
        for step, (x, y, index) in enumerate(group.steps(u), u * group.steps_per_unit):
            with group.autocast():
                logits = net(x)
            losses = loss_fn(logits, y, index, x=x, step=step, lr=lr)  # (K,): each run's own loss
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()  # d sum / d loss_k = 1: each run gets its own gradient
            optimizer.step()
            loss_sum += losses.detach()
            count += 1
            if bar is not None:
                bar.update(1)
    return loss_sum, count


def fit(runs: list[RunState], resume: bool = False) -> list[dict | Exception]:
    """Train every run to trainer.length (one run alone, several as one pack); each run's metrics (or the error that
    stopped it), in order."""
    if not runs:
        raise ConfigError("a pack needs at least one run")
    why = pack_refusal(runs)
    if why:
        raise ConfigError(why)
    results: list = []
    for r in runs:
        try:
            results.append(r.begin(resume))
        except Exception as exc:  # this run cannot start (e.g. it diverged earlier); the others go on
            results.append(exc)
    by_unit: dict[int, list[RunState]] = {}
    for r, res in zip(runs, results):  # runs resumed from different units train as separate packs
        if res is None:
            by_unit.setdefault(r.unit, []).append(r)
    done: dict[int, dict | Exception] = {}
    for group in by_unit.values():
        done.update(train(group))
    return [res if res is not None else done[id(r)] for r, res in zip(runs, results)]


def train_alone(run: RunState, resume: bool = False) -> dict:
    """Train one run alone; its final metrics, or the CdbError that stopped it, raised."""
    out = fit([run], resume)[0]
    if isinstance(out, Exception):
        raise out
    return out


def train(runs: list[RunState]) -> dict[int, dict | Exception]:
    """Train `runs` (all at one unit) to trainer.length, validating every eval_every units: {id(run): its metrics,
    or the error that stopped it}. Alone, a run's error is raised; in a pack it stops that run only."""
    lead, cfg, alone = runs[0], runs[0].cfg, len(runs) == 1
    group, unit, out = assemble(runs), lead.unit, {}
    bar, said = progress(runs)
    started = time.time()
    try:
        while group is not None and unit < cfg.length:
            stop = min(unit + cfg.eval_every, cfg.length)
            loss_sum, count = train_units(group, unit, stop, bar)
            unit = stop
            group.hand_back(cfg.lr_at(unit - 1))
            vals = group.validate()
            rows = after_units(group.runs, loss_sum, count, vals, unit, started, out, alone)
            group.loss.refresh()  # the class weights the weightings just updated weight the next steps
            group = regroup(group, out)
            if alone:  # a run alone has its row here: its error was raised in after_units
                row = rows[0]
                bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{row['val_balanced_accuracy']:.2f}",
                                tau=f"{row.get('tau', 0):.3g}")
            said.validated(unit, rows[0]["val_balanced_accuracy"] if alone else None)
        bar.close()
        for r in group.runs if group is not None else []:  # the final tests: a signal here is an interruption too
            out[id(r)] = r.finish(time.time() - started)
    except KeyboardInterrupt as exc:
        bar.close()
        for r in runs:
            r.close_board()
        term = isinstance(exc, Terminated)
        raise Interrupted(f"{f'terminated ({exc.name})' if term else 'interrupted'}; {kept(runs)}",
                          exc.exit_code if term else 2) from None
    return out


def after_units(runs: list[RunState], loss_sum: torch.Tensor, count: int, vals: list, unit: int, started: float,
                out: dict, alone: bool) -> list[dict | None]:
    """RunState.after_units of every run at `unit`; each run's log row, or None for a run that stopped there (its
    error in `out`; alone, raised): a run's error, foreseen (CdbError) or not, stops that run, the others go on."""
    rows = []
    for k, r in enumerate(runs):
        r.unit = unit
        try:
            rows.append(r.after_units(loss_sum[k], count, time.time() - started, vals[k]))
        except Exception as exc:
            r.close_board()
            if alone:
                raise
            log.error("%s: %s", r.run_dir, user_message(exc) or f"{type(exc).__name__}: {exc}",
                      exc_info=not isinstance(exc, CdbError))
            out[id(r)] = exc
            rows.append(None)
    return rows


def regroup(group: Alone | Pack, out: dict) -> Alone | Pack | None:
    """`group` while all its runs go on; else the runs that go on, assembled anew (None when none does)."""
    going = [r for r in group.runs if id(r) not in out]
    if len(going) == len(group.runs):
        return group
    return assemble(going) if going else None


def progress(runs: list[RunState]) -> tuple[tqdm, Reporter]:
    """The progress bar (on a terminal) and the start and progress lines (cdb/train/progress.py) of `runs`."""
    lead, cfg, alone = runs[0], runs[0].cfg, len(runs) == 1
    steps_per_unit, unit = lead.steps_per_unit, lead.unit
    shown = show_progress(cfg.progress, tty=sys.stderr.isatty(), env=os.environ, sweep=not alone)
    bar = tqdm(total=cfg.length * steps_per_unit, initial=unit * steps_per_unit,
               disable=not (shown and lead.is_main), desc=lead.run_dir.name if alone else f"pack of {len(runs)}",
               unit="step", dynamic_ncols=True, mininterval=1.0)
    where = str(lead.run_dir) if alone else f"pack of {len(runs)} ({lead.run_dir.parent.parent})"
    said = Reporter(where, cfg.length, unit, quiet=not lead.is_main)
    said.say(start_line(where, lead.data.name, len(lead.data.train), cfg.length, cfg.unit, str(lead.device), unit))
    said.quiet = said.quiet or not bar.disable
    return bar, said


def kept(runs: list[RunState]) -> str:
    """What an interruption leaves of these runs, said as it is: cdb.rundir.claims keeps every run that logged a
    validation (with or without a checkpoint) and removes only a new one that logged nothing."""
    saved = [r for r in runs if r.saved_unit is not None]
    bare = [r for r in runs if r.saved_unit is None and r.rows]
    gone = len(runs) - len(saved) - len(bare)

    def who(some: list) -> str:
        return "the run" if len(runs) == 1 else "every run" if len(some) == len(runs) else \
            f"{len(some)} of the {len(runs)} runs"

    if gone == len(runs):
        return (f"{'the run had not' if len(runs) == 1 else 'no run had'} logged a validation yet, so nothing was "
                "kept: run the same command again to start over")
    parts = []
    if saved:
        units = sorted({r.saved_unit for r in saved})
        at = f"unit {units[0]}" if len(units) == 1 else f"units {units[0]}-{units[-1]}"
        parts.append(f"{who(saved)} kept its log and its last checkpoint ({at})")
    if bare:
        parts.append(f"{who(bare)} kept its logged validations but had no checkpoint yet (resume=true starts it over "
                     "from unit 0)")
    if gone:
        parts.append(f"{gone} that had logged nothing {'was' if gone == 1 else 'were'} removed")
    return "; ".join(parts) + ": run the same command with resume=true to continue"
