"""The `pack` Hydra launcher: a sweep's jobs trained as packs of `pack` runs (cdb.train.loop.Pack).

`cdb-run -m ... pack=8` (hydra/launcher=pack is the default launcher)
groups the jobs that can share one packed network (same model and classifier
head, trainer settings and training-set size; seeds, MNIST ratios, tau and
losses may differ, and long-tailed imbalance ratios too with trainer.unit=step)
into packs of up to 8 in sweep order. Every job still gets exactly the run
directory, .hydra/ folder and files `cdb-run` writes for it alone, so
`cdb-table` and resume=true work unchanged. Packs train one after another in
this process, or with n_jobs > 1 in n_jobs worker processes (joblib, as
Hydra's joblib launcher does); pack=1 makes every job its own pack.
pack=auto takes the size the benchmark chose for the device (pack_defaults.json).
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
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from cdb.core.errors import CdbError, ConfigError, Interrupted, check, is_count, user_message

log = logging.getLogger(__name__)
DEFAULTS = Path(__file__).with_name("pack_defaults.json")  # written by `make bench`
# settings a pack's runs may differ in; every other setting must match for two jobs to share a pack
PER_RUN = ("seed", "loss", "resume", "threads", "pack")


def default_pack(device_type: str, model: str | None = None) -> tuple[int, str]:
    """(pack size, why) for a device type (and model, where the benchmark timed that model on its own), as the
    benchmark recorded it; 1 when it recorded nothing."""
    table = json.loads(DEFAULTS.read_text()) if DEFAULTS.exists() else {}
    entry = table.get(device_type)
    if entry is None:
        return 1, f"no benchmark of packs on {device_type} recorded in {DEFAULTS.name}"
    own = (entry.get("models") or {}).get(model)
    if own is not None:
        return int(own["pack"]), f"model={model}: {own.get('why', '')}"
    return int(entry["pack"]), entry.get("why", "")


def resolve_pack(value: Any, device_type: str, model: str | None = None) -> int:
    if value in (None, "auto"):
        k, why = default_pack(device_type, model)
        log.info("pack=auto on %s: pack size %d (%s)", device_type, k, why)
        return k
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"pack={value!r} is not allowed: an integer >= 1 or auto")
    return value


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


class PackLauncher(Launcher):
    """Hydra launcher that trains a sweep's jobs as packs (see the module docstring)."""

    def __init__(self, n_jobs: int = 1) -> None:
        self.n_jobs = n_jobs
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from cdb.train.config import resolve_device

        setup_globals()
        cfg = self.config
        configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose)
        Path(str(cfg.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        jobs = []
        for i, overrides in enumerate(job_overrides):
            sweep_cfg = self.hydra_context.config_loader.load_sweep_config(cfg, list(overrides))
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
            value, sizes = OmegaConf.select(jobs[0], "pack", default=1), {}
            for key, ids in groups.items():  # pack=auto: the size recorded for the group's model
                model = OmegaConf.select(jobs[ids[0]], "model.name", default=None)
                if model not in sizes:
                    sizes[model] = resolve_pack(value, device, model)
                groups[key] = (ids, sizes[model])
        except CdbError as exc:
            print(f"cdb-run: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        size = max(sizes.values(), default=1)
        packs = [ids[j: j + k] for ids, k in groups.values() for j in range(0, len(ids), k)]
        packs.sort(key=lambda p: p[0])  # sweep order: every cell's seed 0 before any seed 1
        log.info("Launching %d jobs as %d packs of up to %d runs, %d at a time", len(jobs), len(packs), size,
                 min(self.n_jobs, len(packs)))
        member_jobs = [[jobs[i] for i in members] for members in packs]
        try:
            if self.n_jobs > 1 and len(packs) > 1:  # one process per pack, n_jobs at a time (joblib, as Hydra's own)
                from joblib import Parallel, delayed

                state = Singleton.get_state()
                done = Parallel(n_jobs=self.n_jobs, backend="loky", batch_size=1, pre_dispatch="n_jobs")(
                    delayed(_pack_in_process)(self.hydra_context, js, state) for js in member_jobs)
            else:
                done = []
                for js in member_jobs:
                    done.append(train_pack(self.hydra_context, js))
                    configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose)
        except Interrupted as exc:  # Ctrl-C / SIGTERM: the sweep ends here; later packs are not started
            print(f"cdb-run: error: {exc}", file=sys.stderr)
            raise SystemExit(exc.exit_code) from None
        returns: list[JobReturn | None] = [None] * len(jobs)
        for members, rets in zip(packs, done):
            for i, ret in zip(members, rets):
                returns[i] = ret
        return returns


def _pack_in_process(hydra_context: HydraContext, jobs: list[DictConfig], singleton_state) -> list[JobReturn]:
    """Body of one worker process: Hydra's global state as in the parent, then the pack."""
    setup_globals()
    Singleton.set_state(singleton_state)
    return train_pack(hydra_context, jobs)


def job_failure(exc: BaseException) -> str:
    """The one line a failed job is counted with: the user's message, or the first line of an unforeseen error
    (whose traceback is printed, as it is a bug to report)."""
    line = user_message(exc)
    if line is None:
        traceback.print_exception(exc)
        line = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
    return line


def train_pack(hydra_context: HydraContext, jobs: list[DictConfig]) -> list[JobReturn]:
    """Set up each job's run directory as Hydra does for a plain job, then train the runs together."""
    import contextlib

    from cdb.launch.callbacks import record_failure
    from cdb.launch.objective import failure_value, job_value
    from cdb.build import claimed_run
    from cdb.core.metrics import outcome_lines
    from cdb.train.loop import Pack, pack_refusal

    trainers, returns = [], []
    with contextlib.ExitStack() as claims:  # each run directory is claimed (locked) until its pack is done
        for job in jobs:
            def build(task_cfg: DictConfig):
                return claimed_run(task_cfg, HydraConfig.get().runtime.output_dir, claims)
            HydraConfig.instance().set_config(job)
            ret = run_job(hydra_context=hydra_context, task_function=build, config=job,
                          job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
            returns.append(ret)
            try:
                trainers.append(ret.return_value)
            except Exception as exc:  # foreseen (CdbError) or not: one bad job does not stop the sweep
                line = job_failure(exc)
                print(f"cdb-run: error: {line}", file=sys.stderr)
                ret.status, ret.return_value = JobStatus.COMPLETED, failure_value(job.hydra, line, None)
                record_failure(hydra_context, job, ret, line)
                trainers.append(None)
        built = [t for t in trainers if t is not None]
        why = pack_refusal(built) if built else None
        if why:
            log.info("these %d runs train one by one: %s", len(built), why)
        resume = bool(jobs[0].resume)
        try:
            results = [r for t in built for r in Pack([t]).fit(resume)] if why else \
                (Pack(built).fit(resume) if built else [])
        except Interrupted:
            raise  # Ctrl-C or SIGTERM ends the sweep (each run's last checkpoint is kept, its claim released)
        except Exception as exc:  # the pack as a whole stopped (e.g. non-finite outputs): each of its jobs failed
            results = [exc] * len(built)
        it = iter(results)
        for job, ret, t in zip(jobs, returns, trainers):
            if t is None:
                continue
            res = next(it)
            if isinstance(res, Exception):
                line = job_failure(res)
                print(f"cdb-run: error: {line}", file=sys.stderr)
                ret.return_value = failure_value(job.hydra, line, None)  # in a tuned study: a failed trial
                record_failure(hydra_context, job, ret, line)
            else:
                for line in outcome_lines(res):
                    print(f"{t.run_dir}: {line}")
                ret.return_value = job_value(job.hydra, res, t.run_dir)  # a tuned study (Optuna) gets the objective
    return returns
