"""Hydra callbacks of cdb-run (registered in configs/config.yaml under hydra.callbacks).

SweepSummary: a `cdb-run -m` sweep ends with one line "n ok, n failed", the first error line of each failed
job, and a non-zero exit when any job failed (Hydra alone exits 0 there). Jobs may run in other processes
(joblib) or on other machines (submitit), so each job leaves its outcome as a small file in the sweep
directory, which the sweep's own process reads at the end and removes.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from cdb.core.errors import CdbError, debug_enabled
from cdb.rundir.claims import check_no_links, check_writable, missing_dirs


class Preflight(Callback):
    """First of cdb-run's callbacks: before Hydra makes any folder, the run path is checked (a non-empty output root, a
    `name` that stays inside it, a writable place), and a single run records which folders making its directory
    will create (`made`), so that a run that fails before it starts removes them and nothing that was there."""

    made: list[Path] | None = None  # read by cdb.cli.run.task; None for sweeps and torchrun's other ranks

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)  # hydra.run.dir reads ${hydra:job.override_dirname}
        run_dir = Path(str(config.hydra.run.dir))
        self._check(config, run_dir)
        Preflight.made = missing_dirs(run_dir) if os.environ.get("RANK", "0") == "0" else None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        Preflight.made = None
        self._check(config, Path(str(config.hydra.sweep.dir)))

    @staticmethod
    def _check(config: DictConfig, where: Path) -> None:
        # start-up: cdb.build imports torch (9.5 s, see cdb.cli.run.task), which a run path refused here never needs
        from cdb.build import root_of
        from cdb.build.checks import check_run_path

        try:
            check_run_path(config)
            check_no_links(where, root_of(config))  # no folder of the run's path may be a link (cdb.rundir.claims)
            check_writable(where)
        except CdbError as exc:
            if debug_enabled():
                traceback.print_exc()
            print(f"cdb-run: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None  # BaseException: passes Hydra's callback guard, which turns exceptions
            # into warnings


FAILED_KEY = "cdb_error"  # what cli.run.task returns for a job that failed with a message (a key, or an attribute)


class SweepSummary(Callback):
    def __init__(self) -> None:
        self.folder: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = OmegaConf.select(config, "hydra.sweep.dir")
        self.folder = str(Path(str(sweep_dir)) / f".cdb-jobs-{os.getpid()}-{int(time.time())}")
        Path(self.folder).mkdir(parents=True, exist_ok=True)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if self.folder is None:  # a single run: cli.run reports it
            return
        value = job_return._return_value
        if job_return.status == JobStatus.FAILED:
            error = (str(value).strip().splitlines() or [type(value).__name__])[0]
        elif isinstance(value, dict) and FAILED_KEY in value:
            error = value[FAILED_KEY]
        elif isinstance(getattr(value, FAILED_KEY, None), str):  # a failed trial of a tuned study (launch.objective)
            error = getattr(value, FAILED_KEY)
        else:
            error = None
        self.write(config, job_return, error)

    def write(self, config: DictConfig, job_return: Any, error: str | None) -> None:
        """Record one job's outcome (a later call for the same job replaces it)."""
        if self.folder is None:
            return
        num = OmegaConf.select(config, "hydra.job.num", default=0)
        record = {"num": num, "overrides": ",".join(job_return.overrides or []), "error": error}
        Path(self.folder, f"{num}.json").write_text(json.dumps(record))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.folder is None:
            return
        folder = Path(self.folder)
        records = sorted((json.loads(p.read_text()) for p in folder.glob("*.json")), key=lambda r: r["num"])
        shutil.rmtree(folder, ignore_errors=True)
        failed = [r for r in records if r["error"]]
        print(f"cdb-run: sweep: {len(records) - len(failed)} ok, {len(failed)} failed", file=sys.stderr)
        for r in failed:
            print(f"cdb-run: job #{r['num']} ({r['overrides']}) failed: {r['error']}", file=sys.stderr)
        if failed:
            raise SystemExit(1)  # BaseException: passes Hydra's callback guard and ends the command non-zero


def record_failure(hydra_context: Any, config: DictConfig, job_return: Any, error: str) -> None:
    """For a launcher that learns of a job's failure after Hydra's on_job_end (the pack launcher builds each job
    in run_job, then trains the pack): the sweep summary counts the job as failed with this line."""
    for cb in getattr(hydra_context.callbacks, "callbacks", []):
        if isinstance(cb, SweepSummary):
            cb.write(config, job_return, error)
