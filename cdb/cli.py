"""Command-line entry points. Thin: compose the config, build the pieces, hand them to the Trainer.

cdb-run    train one run (or a Hydra multirun sweep with -m)
cdb-table  turn run directories into the paper's tables
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .errors import CdbError

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


def config_dir() -> Path:
    """The configs/ tree: the checkout's own when cdb runs from source, else the installed `cdb_configs` package."""
    source = Path(__file__).resolve().parent.parent / "configs"
    if (source / "config.yaml").is_file():
        return source
    from importlib.resources import files

    return Path(str(files(CONFIG_PACKAGE)))


def _check_group_choices(argv: list[str]) -> None:
    """Fail in one line on `group=choice` overrides that name no config (Hydra prints a page otherwise)."""
    root = config_dir()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key in GROUPS and value not in ("null", ""):
            choices = sorted(p.stem for p in (root / key).glob("*.yaml"))
            for v in value.split(","):
                if v not in choices:
                    raise CdbError(f"{key}={v!r} is not allowed: one of {choices}")


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
        atomic_write_text(run_dir / "config.yaml", resolved)
        atomic_write_json(run_dir / "data.json", data.summary())
    return trainer


def _task(cfg: DictConfig) -> dict | None:
    from hydra.core.hydra_config import HydraConfig

    run_dir = HydraConfig.get().runtime.output_dir
    try:
        metrics = train_from_config(cfg, run_dir)
    except CdbError as exc:
        print(f"cdb-run: error: {exc}", file=sys.stderr)
        if HydraConfig.get().mode.name == "MULTIRUN":
            return None  # one bad job does not stop the sweep; the message says which
        raise SystemExit(2) from None
    from .train.distributed import is_main_process

    if not is_main_process():
        return metrics
    from .metrics import result_line

    print(f"{run_dir}: {result_line(metrics)}")
    return metrics


def run(argv: list[str] | None = None) -> None:
    """`cdb-run [overrides]`: see `cdb-run --help` and the README."""
    import hydra

    argv = sys.argv[1:] if argv is None else argv
    try:
        _check_group_choices(argv)
        from . import dryrun
        dry, argv = dryrun.requested(argv)
        if dry:  # before Hydra starts: no run directory, no .hydra/
            return dryrun.main(argv)
    except CdbError as exc:
        print(f"cdb-run: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if not {"-h", "--help", "--hydra-help"} & set(argv):  # help answers without importing torch (slow)
        from .train.distributed import hydra_rank_overrides

        argv = [*argv, *hydra_rank_overrides()]  # under torchrun only rank 0 writes .hydra/
    sys.argv = [sys.argv[0], *argv]
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
