"""The `pack` Hydra launcher: a sweep's jobs trained as packs of `pack` runs (cdb.train.pack.Pack).

`cdb-run -m ... pack=8` (hydra/launcher=pack is the default launcher)
groups the jobs that can share one packed network (same model and classifier
head, trainer settings and training-set size; seeds, MNIST ratios, tau and
losses may differ, and long-tailed imbalance ratios too with trainer.unit=step)
into packs of up to 8 in sweep order. Every job still gets exactly the run
directory, .hydra/ folder and files `cdb-run` writes for it alone, so
`cdb-table` and resume=true work unchanged. Packs train one after another in
this process, or with n_jobs > 1 in n_jobs worker processes (joblib, as
Hydra's joblib launcher does); pack=1 makes every job its own pack.
pack=auto takes the pack size and memory layout the benchmark chose for the device and model
(cdb.launch.defaults, pack_defaults.json).
"""
from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from cdb.core.errors import CdbError, ConfigError, Interrupted, check, is_count, user_message
from cdb.launch.defaults import LAYOUTS, RECORD, default_for

log = logging.getLogger(__name__)
DEFAULTS = RECORD  # written by `make bench` (cdb.launch.defaults: the rule)
# settings a pack's runs may differ in; every other setting must match for two jobs to share a pack
PER_RUN = ("seed", "loss", "resume", "threads", "pack")


def resolve_pack(value: Any, device_type: str, model: str | None = None, layout: str | None = None
                 ) -> tuple[int, str | None, str]:
    """(pack size, memory layout pack=auto sets on packs of >= 2 runs or None, the run.log line). `layout`: the one
    the user set (pack=auto then chooses the size within it)."""
    if value in (None, "auto"):
        k, lay, why = default_for(device_type, model, layout, DEFAULTS)
        log.info("pack=auto on %s, model=%s: %s", device_type, model, why)
        return k, (None if layout else lay), f"pack=auto: {why}"
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"pack={value!r} is not allowed: an integer >= 1 or auto")
    return value, None, ""


def user_layout(job: DictConfig) -> str | None:
    """The memory layout the user set for a job (trainer.channels_last on the command line, or true in the
    config), or None: pack=auto may choose it."""
    given = {str(o).partition("=")[0].lstrip("+~") for o in OmegaConf.select(job, "hydra.overrides.task",
                                                                               default=[]) or []}
    cl = OmegaConf.select(job, "trainer.channels_last", default=False)
    return LAYOUTS[int(bool(cl))] if cl or "trainer.channels_last" in given else None


def set_layout(jobs: list[DictConfig], layout: str | None, note: str) -> str:
    """pack=auto's layout on the jobs of one pack of >= 2 runs (a pack of one keeps the run's own layout); returns
    the pack's run.log line."""
    if layout is None or not note:
        return note
    if len(jobs) < 2:
        return f"{note}; this job trains alone (the last of its group), in its own layout"
    for job in jobs:
        with open_dict(job):
            job.trainer.channels_last = layout == "channels_last"
    return note


def pack_key(cfg: DictConfig) -> str:
    """Jobs with the same key can share a pack (the Pack itself checks the built runs once more)."""
    task = cfg.copy()
    with open_dict(task):
        task.pop("hydra", None)  # Hydra's own settings (run dir, job number) differ per job and need HydraConfig
    c = OmegaConf.to_container(task, resolve=True)
    loss = c.get("loss", {})
    meta = loss.get("weighting") in ("l2rw", "mwn")  # a meta step through its own model: always alone
    head = loss.get("head", "linear")  # the loss may change the model's classifier (LDAM: cosine head)
    for k in PER_RUN:
        c.pop(k, None)
    c.get("dataset", {}).pop("majority_ratio", None)
    if (c.get("trainer") or {}).get("unit") == "step":  # every step a batch of batch_size: any training-set size
        c.pop("imbalance", None)
        c.get("dataset", {}).pop("imbalance", None)
    c["head"] = head
    return json.dumps(c, sort_keys=True, default=str) + (f"#{id(cfg)}" if meta else "")


def keep_composed(loader) -> dict:
    """Make `loader` keep each sweep config it composes, keyed by (id of the master config, overrides), until the
    launcher takes it: Hydra's sweepers compose every job once to check the batch (Sweeper.validate_batch_is_legal)
    and the launcher would compose it again. Installed once per loader; returns the loader's store."""
    store = getattr(loader, "_cdb_composed", None)
    if store is not None:
        return store
    store, compose = {}, loader.load_sweep_config

    def load_sweep_config(master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        cfg = compose(master_config=master_config, sweep_overrides=sweep_overrides)
        store[(id(master_config), tuple(sweep_overrides))] = cfg  # the sweeper only checks that it composes
        return cfg

    loader.load_sweep_config, loader._cdb_composed, loader._cdb_compose = load_sweep_config, store, compose
    return store


class PackLauncher(Launcher):
    """Hydra launcher that trains a sweep's jobs as packs (see the module docstring)."""

    def __init__(self, n_jobs: int = 1) -> None:
        self.n_jobs = n_jobs
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context
        self.composed = keep_composed(hydra_context.config_loader)

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        """A job's config: the one the sweeper composed to check the batch (taken, not composed again), or
        composed here when the sweeper did not (about 0.14 s a job: 20 s of a 70-run pack's start-up)."""
        kept = self.composed.pop((id(self.config), tuple(overrides)), None)
        if kept is not None:
            return kept
        loader = self.hydra_context.config_loader
        return loader._cdb_compose(master_config=self.config, sweep_overrides=list(overrides))

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from cdb.train.config import resolve_device

        setup_globals()
        cfg = self.config
        configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose)
        Path(str(cfg.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        jobs = []
        for i, overrides in enumerate(job_overrides):
            sweep_cfg = self.compose(overrides)
            with open_dict(sweep_cfg):
                sweep_cfg.hydra.job.id = sweep_cfg.hydra.job.num = initial_job_idx + i
            jobs.append(sweep_cfg)
        try:
            check(is_count(self.n_jobs) and self.n_jobs >= 1, "hydra.launcher.n_jobs", self.n_jobs,
                  "an integer >= 1 (packs trained at a time)")
            # trainer=auto (dataset=folder) leaves device null until the run is built: null means auto here too
            device = resolve_device(str(OmegaConf.select(jobs[0], "trainer.device", default=None) or "auto")).type
            groups: dict[str, list[int]] = {}
            for i, job in enumerate(jobs):
                groups.setdefault(pack_key(job), []).append(i)
            value, chosen = OmegaConf.select(jobs[0], "pack", default=1), {}
            for key, ids in groups.items():  # pack=auto: the size (and layout) recorded for the group's model
                model = OmegaConf.select(jobs[ids[0]], "model.name", default=None)
                mine = (model, user_layout(jobs[ids[0]]))
                if mine not in chosen:
                    chosen[mine] = resolve_pack(value, device, *mine)
                groups[key] = (ids, chosen[mine])
        except CdbError as exc:
            print(f"cdb-run: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        size = max((k for k, _, _ in chosen.values()), default=1)
        packs = [(ids[j: j + k], lay, note) for ids, (k, lay, note) in groups.values() for j in range(0, len(ids), k)]
        packs.sort(key=lambda p: p[0][0])  # sweep order: every cell's seed 0 before any seed 1
        notes = [set_layout([jobs[i] for i in members], lay, note) for members, lay, note in packs]
        packs = [members for members, _, _ in packs]
        log.info("Launching %d jobs as %d packs of up to %d runs, %d at a time", len(jobs), len(packs), size,
                 min(self.n_jobs, len(packs)))
        member_jobs = [[jobs[i] for i in members] for members in packs]
        try:
            if self.n_jobs > 1 and len(packs) > 1:  # one process per pack, n_jobs at a time (joblib, as Hydra's own)
                from joblib import Parallel, delayed

                state = Singleton.get_state()
                done = Parallel(n_jobs=self.n_jobs, backend="loky", batch_size=1, pre_dispatch="n_jobs")(
                    delayed(_pack_in_process)(self.hydra_context, js, state, n) for js, n in zip(member_jobs, notes))
            else:
                done = []
                for js, note in zip(member_jobs, notes):
                    done.append(train_pack(self.hydra_context, js, note))
                    configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose)
        except Interrupted as exc:  # Ctrl-C / SIGTERM: the sweep ends here; later packs are not started
            print(f"cdb-run: error: {exc}", file=sys.stderr)
            raise SystemExit(exc.exit_code) from None
        returns: list[JobReturn | None] = [None] * len(jobs)
        for members, rets in zip(packs, done):
            for i, ret in zip(members, rets):
                returns[i] = ret
        return returns


def _pack_in_process(hydra_context: HydraContext, jobs: list[DictConfig], singleton_state, note: str = ""
                     ) -> list[JobReturn]:
    """Body of one worker process: Hydra's global state as in the parent, then the pack."""
    setup_globals()
    Singleton.set_state(singleton_state)
    return train_pack(hydra_context, jobs, note)


def job_failure(exc: BaseException) -> str:
    """The one line a failed job is counted with: the user's message, or the first line of an unforeseen error
    (whose traceback is printed, as it is a bug to report)."""
    line = user_message(exc)
    if line is None:
        traceback.print_exception(exc)
        line = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
    return line


def train_pack(hydra_context: HydraContext, jobs: list[DictConfig], note: str = "") -> list[JobReturn]:
    """Set up each job's run directory as Hydra does for a plain job, then train the runs together. `note`: what
    pack=auto chose and why, for each run's run.log."""
    import contextlib

    from cdb.train.heap import keep_heap

    keep_heap()  # in a worker process too (once per process; cdb/train/heap.py)
    with contextlib.ExitStack() as claims:  # each run directory is claimed (locked) until its pack is done
        returns, runs = build_runs(hydra_context, jobs, note, claims)
        built = [r for r in runs if r is not None]
        log_to_last_built(jobs, runs)
        results = train_runs(built, bool(jobs[0].resume))
        report_outcomes(hydra_context, jobs, returns, runs, results)
    return returns


def build_runs(hydra_context: HydraContext, jobs: list[DictConfig], note: str, claims
               ) -> tuple[list[JobReturn], list]:
    """Each job's Hydra return and its built run (claimed in `claims`), or None for a job refused or failed while
    built (counted as failed, and the sweep goes on)."""
    from cdb.build import claimed_run

    returns, runs = [], []
    for job in jobs:
        def build(task_cfg: DictConfig):
            state = claimed_run(task_cfg, HydraConfig.get().runtime.output_dir, claims)
            if note:  # only once the run is built: a job refused before that leaves no run.log (no directory)
                log.info("%s", note)
            return state
        HydraConfig.instance().set_config(job)
        ret = run_job(hydra_context=hydra_context, task_function=build, config=job,
                      job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
        returns.append(ret)
        try:
            runs.append(ret.return_value)
        except Exception as exc:  # foreseen (CdbError) or not: one bad job does not stop the sweep
            ret.status = JobStatus.COMPLETED
            job_failed(hydra_context, job, ret, exc)
            runs.append(None)
    return returns, runs


def job_failed(hydra_context: HydraContext, job: DictConfig, ret: JobReturn, exc: BaseException) -> None:
    """A job that failed, while built or trained: its one line on stderr, its return value a failure (in a tuned
    study: a failed trial), and its record (cdb.launch.callbacks.record_failure)."""
    from cdb.launch.callbacks import record_failure
    from cdb.launch.objective import failure_value

    line = job_failure(exc)
    print(f"cdb-run: error: {line}", file=sys.stderr)
    ret.return_value = failure_value(job.hydra, line, None)
    record_failure(hydra_context, job, ret, line)


def log_to_last_built(jobs: list[DictConfig], runs: list) -> None:
    """The pack's own lines go to the run.log of its last built job, not to a removed one's."""
    if any(r is not None for r in runs) and runs[-1] is None:
        last = next(j for j, r in zip(reversed(jobs), reversed(runs)) if r is not None)
        HydraConfig.instance().set_config(last)
        configure_log(last.hydra.job_logging, last.hydra.verbose)


def train_runs(built: list, resume: bool) -> list:
    """Each built run's metrics or the error that stopped it: the runs as one pack, or one by one when they cannot
    share one (cdb.train.pack.pack_refusal says why, in run.log)."""
    from cdb.train.loop import fit
    from cdb.train.pack import pack_refusal

    why = pack_refusal(built) if built else None
    if why:
        log.info("these %d runs train one by one: %s", len(built), why)
    try:
        return [res for r in built for res in fit([r], resume)] if why else (fit(built, resume) if built else [])
    except Interrupted:
        raise  # Ctrl-C or SIGTERM ends the sweep (each run's last checkpoint is kept, its claim released)
    except Exception as exc:  # the pack as a whole stopped (e.g. non-finite outputs): each of its jobs failed
        return [exc] * len(built)


def report_outcomes(hydra_context: HydraContext, jobs: list[DictConfig], returns: list[JobReturn], runs: list,
                    results: list) -> None:
    """Each built job's outcome: its result lines printed and its return value (a tuned study's objective), or its
    failure counted and recorded."""
    from cdb.core.metrics import outcome_lines
    from cdb.launch.objective import job_value

    it = iter(results)
    for job, ret, run in zip(jobs, returns, runs):
        if run is None:
            continue
        res = next(it)
        if isinstance(res, Exception):
            job_failed(hydra_context, job, ret, res)
        else:
            for line in outcome_lines(res):
                print(f"{run.run_dir}: {line}")
            ret.return_value = job_value(job.hydra, res, run.run_dir)  # a tuned study (Optuna) gets the objective
