"""Tuned search (hydra/sweeper=tune: hydra-optuna-sweeper's TPE, docs/tuning.md): what a sweep job returns to the
sweeper, and the check that refuses, in one line, a study that cannot work or cannot be fair.

Under a tuning sweeper (Optuna) a job returns its objective, a float: cdb.core.metrics.validation_objective, the
balanced validation accuracy of the checkpoint the run reports. A failed job returns a FailedTrial: not a number, so
Optuna records a failed trial (the study goes on), carrying the job's one error line for the sweep summary.
Under any other sweeper a job returns its metrics, as it always did.
"""
from __future__ import annotations

import logging
import sys
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from cdb.core.metrics import validation_objective
from cdb.launch.callbacks import FAILED_KEY

OBJECTIVE = "balanced validation accuracy"
# keys a tuning study may not search over, and why
NOT_SEARCHED = {
    "loss": "one study tunes one method, so that every method gets the same trial budget: run one study per loss "
            "(cdb-run -m experiment=tune_mnist loss=NAME, or make tune-table)",
    "seed": "a study over seeds picks the luckiest seed, not a setting: tune at one seed (seed=N)",
}


# the sweepers whose jobs return their objective: hydra/sweeper=optuna, and hydra/sweeper=tune (a subclass of it)
TUNING_SWEEPERS = ("hydra_plugins.hydra_optuna_sweeper.", "hydra_plugins.cdb_pack_launcher.tune_sweeper.")


def tuning(hydra_cfg: Any) -> bool:
    """Whether the sweep's sweeper is Optuna's (hydra/sweeper=tune or optuna): its jobs return their objective."""
    target = OmegaConf.select(hydra_cfg, "sweeper._target_", default=None) if hydra_cfg is not None else None
    return str(target or "").startswith(TUNING_SWEEPERS)


class FailedTrial:
    """A failed job's value in a tuned study: not a number (hydra-optuna-sweeper then records a failed trial, with
    this object's text in its warning, and the study goes on), with the job's error line as attribute FAILED_KEY."""

    def __init__(self, error: str) -> None:
        setattr(self, FAILED_KEY, error)

    def __float__(self) -> float:
        raise ValueError(str(self))

    def __str__(self) -> str:
        return f"no objective: the run failed: {getattr(self, FAILED_KEY)}"


def job_value(hydra_cfg: Any, metrics: dict, run_dir: Any) -> Any:
    """What a finished job returns to the sweeper: its objective when tuning (printed with the run's directory),
    else its metrics."""
    if not tuning(hydra_cfg):
        return metrics
    value = validation_objective(metrics)
    print(f"{run_dir}: objective ({OBJECTIVE}, {metrics.get('selected', 'last')} checkpoint) {value:.4f}")
    return value


def failure_value(hydra_cfg: Any, line: str, otherwise: Any) -> Any:
    """What a failed job returns: a FailedTrial when tuning, else `otherwise` (the launcher's own failure value)."""
    return FailedTrial(line) if tuning(hydra_cfg) else otherwise


def _sweeps(hydra_cfg: Any) -> list:
    """The parsed sweep overrides of a tuning study (its search dimensions): hydra.sweeper.params, where the command
    line's value of the same key replaces the config's (as the sweeper does)."""
    parser = OverridesParser.create()
    params = OmegaConf.select(hydra_cfg, "sweeper.params", default=None) or {}
    items = [f"{k}={v}" for k, v in params.items()] + list(OmegaConf.select(hydra_cfg, "overrides.task") or [])
    last = {o.key_or_group: o for o in parser.parse_overrides([i for i in items if not i.startswith("hydra")])}
    return [o for o in last.values() if o.is_sweep_override()]


def _mixed_choice(override) -> bool:
    """A choice of words and numbers (loss.tau=choice(dynamic, 0.5, ...)), which Optuna's GridSampler cannot sort."""
    if not override.is_choice_sweep():
        return False
    kinds = {isinstance(v, str) for v in override.sweep_iterator()}
    return len(kinds) > 1


def study_refusal(config: DictConfig) -> str | None:
    """The one line that refuses a tuning study (None: it may run): the objective must be maximised, neither the
    method nor the seed may be searched over, and a grid needs finite dimensions that Optuna can sort."""
    hydra_cfg = config.hydra
    if not tuning(hydra_cfg):
        return None
    direction = OmegaConf.select(hydra_cfg, "sweeper.direction")
    directions = list(direction) if OmegaConf.is_list(direction) or isinstance(direction, list) else [direction]
    if [str(d).split(".")[-1] for d in directions] != ["maximize"]:
        shown = ",".join(str(d).split(".")[-1] for d in directions)
        return (f"hydra.sweeper.direction={shown} is not allowed: the objective is one number, the {OBJECTIVE} "
                "(higher is better): use maximize (hydra/sweeper=tune sets it)")
    sweeps = _sweeps(hydra_cfg)
    for key in (o.key_or_group for o in sweeps):
        if key.lstrip("+~") in NOT_SEARCHED:
            return f"{key} is searched over in a tuned study: {NOT_SEARCHED[key.lstrip('+~')]}"
    grid = "GridSampler" in str(OmegaConf.select(hydra_cfg, "sweeper.sampler._target_", default=""))
    for o in sweeps if grid else []:
        if o.is_interval_sweep():
            return (f"hydra/sweeper/sampler=grid needs a finite set of values for {o.key_or_group}, not an interval: "
                    f"give it as choice(...) or range(...), or use the default TPE sampler")
        if _mixed_choice(o):
            return (f"hydra/sweeper/sampler=grid cannot order {o.key_or_group}: its choices mix words and numbers; "
                    f"use the default TPE sampler (or random), or give {o.key_or_group} choices of one kind")
    return None


class TuneCheck(Callback):
    """Registered in configs/config.yaml before the sweep summary: a refused study stops before its first trial."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        line = study_refusal(config)
        if line:
            print(f"cdb-run: error: {line}", file=sys.stderr)
            raise SystemExit(2)  # BaseException: passes Hydra's callback guard
        if tuning(config.hydra):  # Optuna 2 imports alembic, whose plugins each log a line at INFO
            logging.getLogger("alembic").setLevel(logging.WARNING)
