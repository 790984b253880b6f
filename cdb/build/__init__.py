"""From a composed config to a run ready to train: data, model, criterion and trainer settings, built once for
the run, the dry run and the pack launcher; plus the run directory's claim and its `.hydra/` record.

    build_run(cfg, run_dir)          -> RunState (cdb.train.run), config.yaml and data.json written on rank 0
    train_from_config(cfg, run_dir)  -> final metrics (one process, or DDP under torchrun / trainer.devices>1)
    run_in(cfg, run_dir)             -> claim the run directory, then train (what cdb-run does for one job)
    claimed_run(cfg, run_dir, stack) -> build now, train later, the claim held on `stack` (the pack launcher)
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

import cdb.config  # noqa: F401  (registers the resolvers and trainer/base before any composition)
from cdb.build import checks
from cdb.build.recipe import resolve_auto
from cdb.config import config_dir
from cdb.core.errors import user_message
from cdb.data import build_dataset
from cdb.losses import build_criterion
from cdb.models import build_model
from cdb.rundir import CONFIG, DATA, LAST, settings_of
from cdb.rundir import claims as rundir_claim
from cdb.rundir.io import atomic_write_text
from cdb.train.batches import describe_sampling
from cdb.train.config import TrainerConfig, show_progress
from cdb.train.distributed import is_main_process, launch
from cdb.train.loop import train_alone
from cdb.train.run import RunState

log = logging.getLogger(__name__)


def fingerprint(cfg: DictConfig) -> dict:
    """What a run computes (cdb.rundir.settings_of its resolved settings): recorded in each checkpoint, so that
    resuming from another run's checkpoint is refused, naming the first difference."""
    return settings_of(OmegaConf.to_container(cfg, resolve=True))


def train_from_config(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Build dataset, model, loss and trainer from a composed config and train; returns the final metrics.

    Under torchrun, or with trainer.devices > 1, this runs data-parallel (cdb.train.distributed.launch).
    """
    return launch(_fit, cfg, run_dir)


def _fit(cfg: DictConfig, run_dir: str | Path, dist=None) -> dict:
    """Build the run and train it in this process (rank `dist`, or alone)."""
    return train_alone(build_run(cfg, run_dir, dist), resume=bool(cfg.resume))


def build_run(cfg: DictConfig, run_dir: str | Path, dist=None):
    """The RunState of one run (one seed); rank 0 writes the resolved config and the data summary."""
    run_dir = Path(run_dir)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    seed = int(cfg.seed)
    ds_cfg = OmegaConf.to_container(cfg.dataset, resolve=True)
    data = build_dataset(ds_cfg.pop("name"), seed=seed, **ds_cfg)
    cfg = resolve_auto(cfg, data)  # model=auto / trainer=auto (dataset=folder): chosen from the data, logged
    torch.manual_seed(seed)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model = build_model(model_cfg.pop("name"), data.num_classes, data.input_shape,
                        head=cfg.loss.get("head", "linear"), **model_cfg)  # LDAM's loss config asks for cosine
    criterion = build_criterion(OmegaConf.to_container(cfg.loss, resolve=True), data.num_classes,
                                data.class_counts)
    tcfg = TrainerConfig.from_dict(OmegaConf.to_container(cfg.trainer, resolve=True))
    tcfg.progress = show_progress(tcfg.progress, tty=sys.stderr.isatty(), env=os.environ, sweep=in_sweep())
    warn_slow(cfg, tcfg, len(data.train))
    warmup = checks.warmup_note(OmegaConf.to_container(cfg.loss, resolve=True), vars(tcfg))
    if warmup and (dist is None or dist.rank == 0):
        log.warning("%s", warmup)
    state = RunState(model, data, criterion, tcfg, run_dir, seed=seed, dist=dist, settings=fingerprint(cfg))
    if state.is_main:
        resolved = OmegaConf.to_yaml(cfg, resolve=True)
        log.info("presets: %s", preset_choices())
        log.info("settings:\n%s", resolved.rstrip())
        summary = data.summary()
        log.info("data: %s", ", ".join(f"{k}={summary[k]}" for k in ("dataset", "train", "val", "test",
                                                                         "train_class_counts") if k in summary))
        for note in data.info.get("notes") or []:  # what the dry run prints as "note: ..."
            log.warning("dataset %s: %s", data.name, note)
        log.info("%s", describe_sampling(tcfg.sampler, data.class_counts, data.class_names, tcfg.length))
        # written by state.begin once a resumed run's checkpoint is known to be its own (same settings, same data);
        # a finished run (resume=true) is only reported and keeps its record
        state.record = {CONFIG: resolved, DATA: json.dumps(summary, indent=2) + "\n"}
    return state


def in_sweep() -> bool:
    """Whether this run is a job of a sweep (`cdb-run -m`: Hydra's multirun, whatever the launcher)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def warn_slow(cfg: DictConfig, tcfg, n_train: int) -> None:
    """Settings that are allowed but make a run much slower than it needs to be: said once, in run.log too."""
    cores = os.cpu_count() or 1
    if cfg.get("threads") and int(cfg.threads) > cores:
        log.warning("threads=%d is more than the %d CPU cores here: threads then wait for each other and the run "
                    "is slower, not faster; threads=%d (or null) is the most that helps", int(cfg.threads), cores, cores)
    if tcfg.batch_size > n_train:
        what = ("every step is then a batch of {b} images drawn from {p:.0f} passes over the split" if tcfg.unit == "step"
                else "each epoch is then a single step over the whole split").format(b=tcfg.batch_size,
                                                                                    p=tcfg.batch_size / n_train)
        log.warning("trainer.batch_size=%d is larger than the training split (%d images): %s, which is far slower "
                    "per step than intended", tcfg.batch_size, n_train, what)


def preset_choices() -> str:
    """Which config file of each group made this run's settings, e.g. `dataset=mnist_imbalanced (model=lenet5,
    trainer=mnist chosen by the dataset)`: a dataset config (or an MNIST protocol, protocol=p1..p4) picks the model
    and trainer unless the command line names them, and dataset_loss/<dataset>_<loss>.yaml adds per-pair settings."""
    if not HydraConfig.initialized():
        return "(not composed by Hydra)"
    hc = HydraConfig.get()
    choices = {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra/") and v is not None}
    if not (config_dir() / "dataset_loss" / f"{choices.get('dataset_loss')}.yaml").is_file():
        choices.pop("dataset_loss", None)  # an optional config this (dataset, loss) pair does not have
    given = {str(o).partition("=")[0].lstrip("+~") for o in hc.overrides.task}

    def why(k: str) -> str:
        if k in given:
            return ""
        if k == "dataset_loss":
            return " (for this dataset and loss)"
        if k in ("model", "trainer"):
            by = f"protocol/{choices['protocol']}" if "protocol" in choices else f"dataset/{choices.get('dataset')}"
            return f" (chosen by configs/{by}.yaml)"
        return " (default)"

    return ", ".join(f"{k}={v}{why(k)}" for k, v in sorted(choices.items()))


def save_hydra_dir(cfg: DictConfig, run_dir: Path) -> None:
    """What Hydra writes to .hydra/ (hydra.output_subdir=null leaves it to us), once the run proceeds."""
    hydra_cfg = HydraConfig.instance().cfg
    atomic_write_text(run_dir / ".hydra" / "config.yaml", OmegaConf.to_yaml(cfg))
    atomic_write_text(run_dir / ".hydra" / "hydra.yaml", OmegaConf.to_yaml(hydra_cfg))
    atomic_write_text(run_dir / ".hydra" / "overrides.yaml", OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task))


def root_of(cfg: DictConfig) -> Path | None:
    """The output root runs of `cfg` go under (None when unset): no folder below it may be a link."""
    root = cfg.get("output_root")
    return Path(root).expanduser() if isinstance(root, str) and root.strip() else None


def run_in(cfg: DictConfig, run_dir: Path) -> dict:
    """Claim the run directory (lock, pre-flight checks), then train; ranks > 0 under torchrun only train."""
    if not is_main_process():
        return train_from_config(cfg, run_dir)
    with rundir_claim.claim(run_dir, bool(cfg.resume), root_of(cfg)) as claim:
        try:
            if not (run_dir / LAST).exists():  # a run with a checkpoint keeps the .hydra/ record it started with
                save_hydra_dir(cfg, run_dir)
            log.info("run directory %s (%s)", run_dir, "new" if claim.fresh else
                     "finished: reporting" if claim.finished else "resuming" if cfg.resume else "existing")
            return train_from_config(cfg, run_dir)
        except BaseException as exc:  # into run.log while the directory still exists
            log.error("run failed: %s", user_message(exc) or repr(exc), extra={"console": False})
            raise


def claimed_run(cfg: DictConfig, run_dir: str | Path, stack: contextlib.ExitStack):
    """The RunState of one job for a launcher that builds jobs now and trains them later (the pack launcher),
    with the checks and the run-directory claim cdb-run makes around a single run; the claim stays on `stack`
    until the caller closes it. A job that fails here leaves its run directory as it was (or none)."""
    run_dir = Path(run_dir)
    job = contextlib.ExitStack()
    try:
        checks.check_run(cfg, HydraConfig.get().overrides.task)
        job.enter_context(rundir_claim.claim(run_dir, bool(cfg.resume), root_of(cfg)))
        if not (run_dir / LAST).exists():
            save_hydra_dir(cfg, run_dir)
        state = build_run(cfg, run_dir)
    except BaseException:
        job.__exit__(*sys.exc_info())  # the claim sees the failure: a fresh directory is removed
        rundir_claim.remove_empty(run_dir)
        raise
    stack.push(job)
    return state
