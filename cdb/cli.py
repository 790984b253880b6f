"""Command-line entry points. Thin: compose the config, build the pieces, hand them to the Trainer.

cdb-run    train one run (or a Hydra multirun sweep with -m)
cdb-table  turn run directories into the paper's tables
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import traceback
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from . import rundir, settings  # settings also registers the config resolvers the trainer presets use
from .callbacks import FAILED_KEY
from .errors import DEBUG_ENV, CdbError, debug_enabled, user_message
from .train.config import TrainerConfig

log = logging.getLogger(__name__)

CONFIG_PACKAGE = "cdb_configs"
GROUPS = ("dataset", "model", "loss", "trainer", "experiment")
MAX_DIRNAME = 200  # file systems allow 255 bytes per path component


def _dirname(override_dirname: str) -> str:
    """Run-directory name from the command-line overrides ('default' when there are none).

    Names past MAX_DIRNAME bytes keep their start and end with a hash of the whole, so distinct override sets
    never share a directory; config.yaml in the run directory holds every setting either way.
    """
    if not override_dirname:
        return "default"
    name = override_dirname.replace("/", "_")
    if len(name.encode()) <= MAX_DIRNAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:12]
    return name.encode()[: MAX_DIRNAME - 14].decode(errors="ignore") + "-h" + digest


if not OmegaConf.has_resolver("cdb_dirname"):
    OmegaConf.register_new_resolver("cdb_dirname", _dirname)

# TrainerConfig is the one source of the trainer defaults: registered as trainer/base, the schema every
# configs/trainer/*.yaml preset starts from (`defaults: [base, _self_]`), so a preset states only what it changes
# and `trainer.devices=2` (any field) works with every preset. Registered here, where both the CLI and
# in-process composition (tests, cdb.recipe) find the config tree (config_dir).
ConfigStore.instance().store(group="trainer", name="base", node=TrainerConfig)


def config_dir() -> Path:
    """The configs/ tree: the checkout's own when cdb runs from source, else the installed `cdb_configs` package."""
    source = Path(__file__).resolve().parent.parent / "configs"
    if (source / "config.yaml").is_file():
        return source
    from importlib.resources import files

    return Path(str(files(CONFIG_PACKAGE)))


def _group_values(key: str, value: str, choices: list[str]) -> list[str]:
    """The config names a `group=value` override asks for, read with Hydra's own override parser, so that
    sweep syntax (a,b / choice(a,b) / glob(c*)) is checked like a plain value; range() is left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, Glob
    from hydra.errors import HydraException

    try:
        override = OverridesParser.create().parse_override(f"{key}={value}")
    except HydraException:
        return []  # not valid override syntax: Hydra reports it in its own words
    v = override.value()
    if isinstance(v, Glob):
        matched = v.filter(choices)
        if not matched:
            raise CdbError(f"{key}={value} matches no config: one of {choices}")
        return matched
    if isinstance(v, ChoiceSweep) or override.is_sweep_override():
        return list(override.sweep_string_iterator()) if isinstance(v, ChoiceSweep) else []
    return [str(v)]


_JOBLIB, _SUBMITIT = "hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_submitit_launcher"
LAUNCHER_PLUGINS = {"local2": _JOBLIB, "joblib": _JOBLIB,  # hydra/launcher choice -> the plugin it needs
                    "slurm": _SUBMITIT, "submitit_slurm": _SUBMITIT, "submitit_local": _SUBMITIT}


def _check_launcher(value: str) -> None:
    """hydra/launcher=... needs its Hydra plugin: name the pip extra that installs it."""
    import importlib.util

    module = LAUNCHER_PLUGINS.get(value)
    if module and importlib.util.find_spec(module) is None:
        plugin = module.split(".")[-1].replace("_", "-")
        raise CdbError(f"hydra/launcher={value} needs the {plugin} plugin, which is not installed: "
                       "pip install 'cdb[sweep]'")


def register_pack_launcher() -> None:
    """Register cdb's pack launcher with Hydra by hand.

    Hydra finds plugins by walking the `hydra_plugins` namespace package on sys.path; an editable install
    (`pip install -e .`, what `make venv` does) maps our part of it through an import hook that this walk
    does not see, so `cdb-run -m` outside the repository root would fail with "Unknown plugin class".
    """
    from hydra.core.plugins import Plugins
    from hydra_plugins.cdb_pack_launcher.pack_launcher import PackLauncher

    Plugins.instance().register(PackLauncher)


def _check_group_choices(argv: list[str]) -> None:
    """Fail in one line on `group=choice` overrides that name no config (Hydra prints a page otherwise)."""
    root = config_dir()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key == "hydra/launcher":
            _check_launcher(value)
        if key in GROUPS and value not in ("null", ""):
            stored = ConfigStore.instance().repo.get(key, {})  # trainer/base: TrainerConfig, as `--help` lists it
            choices = sorted({p.stem for p in (root / key).glob("*.yaml")}
                             | {n.removesuffix(".yaml") for n in stored if n.endswith(".yaml")})
            for v in _group_values(key, value, choices):
                if v not in choices:
                    raise CdbError(f"{key}={v!r} is not allowed: one of {choices}")


def check_override_types(argv: list[str]) -> None:
    """Fail in one line on a `trainer.<setting>=<value>` of the wrong type, sweep values included. The trainer
    node's schema (TrainerConfig) would refuse it too, but while composing, with Hydra's page of error."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for arg in argv:
        if not arg.lstrip("+~").startswith("trainer.") or "=" not in arg:
            continue
        try:
            override = parser.parse_override(arg)
            values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        except HydraException:
            continue  # not valid override syntax (or an interval sweep): Hydra reports it in its own words
        name = override.key_or_group.split(".", 1)[1]
        for value in values:
            settings.check_trainer_types({name: value})


def train_from_config(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Build dataset, model, loss and trainer from a composed config and train; returns the final metrics.

    Under torchrun, or with trainer.devices > 1, this runs data-parallel (cdb.train.distributed.launch).
    """
    from .train.distributed import launch

    return launch(_fit, cfg, run_dir)


def _fit(cfg: DictConfig, run_dir: str | Path, dist=None) -> dict:
    return build_trainer(cfg, run_dir, dist).fit(resume=bool(cfg.resume))


def build_trainer(cfg: DictConfig, run_dir: str | Path, dist=None):
    """The Trainer of one run (one seed); rank 0 writes the resolved config and the data summary."""
    import torch

    from .data import build_dataset
    from .losses import build_criterion
    from .models import build_model
    from .train.io import atomic_write_json, atomic_write_text
    from .train.loop import Trainer, TrainerConfig

    run_dir = Path(run_dir)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    seed = int(cfg.seed)
    ds_cfg = OmegaConf.to_container(cfg.dataset, resolve=True)
    data = build_dataset(ds_cfg.pop("name"), seed=seed, **ds_cfg)
    from .recipe import resolve_auto
    cfg = resolve_auto(cfg, data)  # model=auto / trainer=auto (dataset=folder): chosen from the data, logged
    torch.manual_seed(seed)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model = build_model(model_cfg.pop("name"), data.num_classes, data.input_shape,
                        head=cfg.loss.get("head", "linear"), **model_cfg)  # LDAM's loss config asks for cosine
    criterion = build_criterion(OmegaConf.to_container(cfg.loss, resolve=True), data.num_classes,
                                data.class_counts)
    tcfg = TrainerConfig.from_dict(OmegaConf.to_container(cfg.trainer, resolve=True))
    trainer = Trainer(model, data, criterion, tcfg, run_dir, seed=seed, dist=dist)
    if trainer.is_main:
        resolved = OmegaConf.to_yaml(cfg, resolve=True)
        log.info("presets: %s", preset_choices())
        log.info("settings:\n%s", resolved.rstrip())
        summary = data.summary()
        log.info("data: %s", ", ".join(f"{k}={summary[k]}" for k in ("dataset", "train", "val", "test",
                                                                         "train_class_counts") if k in summary))
        if not (run_dir / "metrics.json").exists():  # a finished run (resume=true) is only reported: keep its record
            atomic_write_text(run_dir / "config.yaml", resolved)
            atomic_write_json(run_dir / "data.json", summary)
    return trainer


def preset_choices() -> str:
    """Which config file of each group made this run's settings, e.g. `dataset=mnist_imbalanced (model=lenet5,
    trainer=mnist chosen by the dataset)`: a dataset config picks its paper model and trainer unless the command
    line names them, and dataset_loss/<dataset>_<loss>.yaml adds per-pair settings."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return "(not composed by Hydra)"
    hc = HydraConfig.get()
    choices = {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra/") and v is not None}
    given = {str(o).partition("=")[0].lstrip("+~") for o in hc.overrides.task}

    def why(k: str) -> str:
        if k in given:
            return ""
        if k == "dataset_loss":
            return " (for this dataset and loss)"
        if k in ("model", "trainer"):
            return f" (chosen by configs/dataset/{choices.get('dataset')}.yaml)"
        return " (default)"

    text = ", ".join(f"{k}={v}{why(k)}" for k, v in sorted(choices.items()))
    return text


def _save_hydra_dir(cfg: DictConfig, run_dir: Path) -> None:
    """What Hydra writes to .hydra/ (hydra.output_subdir=null leaves it to us), once the run proceeds."""
    from hydra.core.hydra_config import HydraConfig

    from .train.io import atomic_write_text

    hydra_cfg = HydraConfig.instance().cfg
    atomic_write_text(run_dir / ".hydra" / "config.yaml", OmegaConf.to_yaml(cfg))
    atomic_write_text(run_dir / ".hydra" / "hydra.yaml", OmegaConf.to_yaml(hydra_cfg))
    atomic_write_text(run_dir / ".hydra" / "overrides.yaml", OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task))


def _run_in(cfg: DictConfig, run_dir: Path) -> dict:
    """Claim the run directory (lock, pre-flight checks), then train; ranks > 0 under torchrun only train."""
    from .train.distributed import is_main_process

    if not is_main_process():
        return train_from_config(cfg, run_dir)
    with rundir.claim(run_dir, bool(cfg.resume)) as claim:
        try:
            if not claim.finished:
                _save_hydra_dir(cfg, run_dir)
            log.info("run directory %s (%s)", run_dir, "new" if claim.fresh else
                     "finished: reporting" if claim.finished else "resuming" if cfg.resume else "existing")
            return train_from_config(cfg, run_dir)
        except BaseException as exc:  # into run.log while the directory still exists
            log.error("run failed: %s", user_message(exc) or repr(exc), extra={"console": False})
            raise


def claimed_trainer(cfg: DictConfig, run_dir: str | Path, stack: contextlib.ExitStack):
    """The Trainer of one job for a launcher that builds jobs now and trains them later (the pack launcher),
    with the checks and the run-directory claim cdb-run makes around a single run; the claim stays on `stack`
    until the caller closes it. A job that fails here leaves its run directory as it was (or none)."""
    from hydra.core.hydra_config import HydraConfig

    run_dir = Path(run_dir)
    job = contextlib.ExitStack()
    try:
        settings.check_run(cfg, HydraConfig.get().overrides.task)
        claim = job.enter_context(rundir.claim(run_dir, bool(cfg.resume)))
        if not claim.finished:
            _save_hydra_dir(cfg, run_dir)
        trainer = build_trainer(cfg, run_dir)
    except BaseException:
        job.__exit__(*sys.exc_info())  # the claim sees the failure: a fresh directory is removed
        rundir.remove_empty(run_dir)
        raise
    stack.push(job)
    return trainer


def _task(cfg: DictConfig) -> dict | None:
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode.name == "MULTIRUN"
    logging.captureWarnings(True)  # warnings go to run.log (and, as warnings, to the console)
    try:
        settings.check_run(cfg, hydra_cfg.overrides.task)
        metrics = _run_in(cfg, run_dir)
    except (Exception, KeyboardInterrupt) as exc:
        line = user_message(exc)
        rundir.remove_empty(run_dir)  # the directory Hydra made for a run that never started
        if line is None or debug_enabled():
            if not multirun:
                raise  # a bug, or debug on: Hydra prints the traceback and exits 1
            traceback.print_exc()
            line = line or f"{type(exc).__name__}: {exc}"
        else:
            print(f"cdb-run: error: {line}", file=sys.stderr)
        if isinstance(exc, KeyboardInterrupt):
            raise SystemExit(130) from None  # Ctrl-C ends a sweep too
        if multirun:
            return {FAILED_KEY: line}  # one bad job does not stop the sweep; the summary lists it
        raise SystemExit(2) from None
    from .train.distributed import is_main_process

    if not is_main_process():
        return metrics
    from .metrics import result_line

    print(f"{run_dir}: {result_line(metrics)}")
    return metrics


def _debug_requested(argv: list[str]) -> bool:
    """hydra.verbose=<anything but false> on the command line asks for debug output, tracebacks included."""
    return any(a.startswith("hydra.verbose=") and a.split("=", 1)[1].lower() not in ("false", "null", "[]", "")
               for a in argv)


def _output_root(argv: list[str]) -> str | None:
    """The output root a command writes under (None when hydra.run/sweep.dir is given: Hydra decides)."""
    if any(a.startswith(("hydra.run.dir=", "hydra.sweep.dir=")) for a in argv):
        return None
    given = [a.split("=", 1)[1] for a in argv if a.startswith("output_root=")]
    return given[-1] if given else os.environ.get("CDB_OUTPUT_ROOT", "outputs")


def run(argv: list[str] | None = None) -> None:
    """`cdb-run [overrides]`: see `cdb-run --help` and the README."""
    import hydra

    argv = sys.argv[1:] if argv is None else argv
    argv = ["hydra.verbose=true" if a in ("-v", "--verbose") else a for a in argv]  # -v: Hydra's debug switch
    if _debug_requested(argv):
        os.environ[DEBUG_ENV] = "1"  # inherited by spawned DDP processes
    if debug_enabled():
        os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        _check_group_choices(argv)
        check_override_types(argv)
        from . import dryrun
        dry, argv = dryrun.requested(argv)
        if dry:  # before Hydra starts: no run directory, no .hydra/
            return dryrun.main(argv)
        root = _output_root(argv)
        if root is not None and not any(a in ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i")
                                        or a.startswith("--cfg") for a in argv):
            rundir.check_writable(root)
    except CdbError as exc:
        if debug_enabled():
            raise
        print(f"cdb-run: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if os.environ.get("RANK", "0") != "0":  # torchrun: only rank 0 writes .hydra/ and the job log
        from .train.distributed import hydra_rank_overrides

        argv = [*argv, *hydra_rank_overrides()]
    sys.argv = [sys.argv[0], *argv]
    register_pack_launcher()
    main = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(_task)
    main()


def table(argv: list[str] | None = None) -> None:
    """`cdb-table NAME --runs DIR`: build results/NAME.md and .csv from run directories."""
    from .tables import main as table_main

    try:
        table_main(sys.argv[1:] if argv is None else argv)
    except CdbError as exc:
        print(f"cdb-table: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()
