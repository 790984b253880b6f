"""Checks on a composed config that no single builder can make.

Each check fails in one line (cdb.core.errors.ConfigError) naming the setting, the value and what is allowed,
before a run directory is touched: value types (seed=abc, trainer.batch_size=2.5, threads=-1), and settings
that the chosen dataset does not read (imbalance=50 on MNIST would otherwise be silently ignored yet named
in the run directory).
"""
from __future__ import annotations

from dataclasses import fields

from omegaconf import DictConfig, OmegaConf

from cdb.core.errors import check

_KINDS = {  # dataclass annotation -> (test, what is allowed)
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "list": (lambda v: isinstance(v, (list, tuple)), "a list, e.g. [3000]"),
    "progress": (lambda v: isinstance(v, bool) or v == "auto", "auto, true or false"),  # TrainerConfig.progress
}


def check_trainer_types(trainer: dict) -> None:
    """Each trainer.* value has its TrainerConfig field's type (trainer.lr=abc, trainer.batch_size=2.5 fail).

    The resolved TrainerConfig checks ranges and nulls again once the data has filled in trainer=auto."""
    from cdb.train.config import TrainerConfig

    for f in fields(TrainerConfig):
        if trainer.get(f.name) is None:  # absent, or null: filled from the data later (trainer=auto, cdb/build/recipe.py)
            continue
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        kind = kind.removeprefix("Optional[").removesuffix("]").split("[")[0].lower()  # Optional[List[int]] -> list
        test, allowed = _KINDS.get(kind, (lambda v: True, ""))
        check(test(trainer[f.name]), f"trainer.{f.name}", trainer[f.name], allowed)


MAX_SEED = 2**32  # every generator seeded from it (data splits, batches, torch) takes the whole range


def check_output_root(root) -> None:
    """output_root must be given: an empty CDB_OUTPUT_ROOT would put runs at the filesystem root."""
    check(isinstance(root, str) and root.strip() != "", "output_root", root,
          "a folder (set output_root=... or CDB_OUTPUT_ROOT to a non-empty path, or unset it for ./outputs)")


NAME_BYTES = 255  # the longest file name Linux, macOS and Windows file systems take (NAME_MAX)


def check_name(name) -> None:
    """`name` is one folder name, so that no run is written outside the output root, and one the file system takes."""
    check(isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
          and "\0" not in name, "name", name,
          "one folder name (no '/', not '.' or '..'): runs go to <output_root>/<name>/...")
    check(len(name.encode()) <= NAME_BYTES, "name", name[:20] + "...", f"a folder name of at most {NAME_BYTES} bytes "
          f"(this one has {len(name.encode())})")


def check_run_path(cfg: DictConfig) -> None:
    """The settings that become the run directory's path (an explicit hydra.run.dir / hydra.sweep.dir stays the
    user's choice)."""
    check_output_root(cfg.get("output_root"))
    check_name(cfg.get("name"))


def _overridden(overrides, key: str) -> str | None:
    """The value given to `key` among Hydra override strings (command line or sweep), else None."""
    for o in overrides or []:
        k, sep, v = str(o).partition("=")
        if sep and k.lstrip("+~") == key:
            return v
    return None


def check_run(cfg: DictConfig, overrides=()) -> None:
    """All checks of one composed run config; `overrides` are the run's Hydra overrides (hydra.overrides.task)."""
    seed = cfg.get("seed")
    check(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < MAX_SEED, "seed", seed,
          f"an integer in [0, {MAX_SEED})")
    check_run_path(cfg)
    threads = cfg.get("threads")
    check(threads is None or (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1),
          "threads", threads, "null (PyTorch's default) or an integer >= 1")
    check(isinstance(cfg.get("resume"), bool), "resume", cfg.get("resume"), "true or false")
    check_trainer_types(OmegaConf.to_container(cfg.trainer, resolve=True))
    value = _overridden(overrides, "imbalance")
    if value is not None and "${imbalance}" not in OmegaConf.to_yaml(cfg.dataset):
        name = OmegaConf.select(cfg, "dataset.name")
        hint = "; its imbalance is dataset.majority_ratio" if name == "mnist_imbalanced" else ""
        check(False, "imbalance", cfg.get("imbalance"),
              f"dataset {name} does not use it (only long-tailed datasets do){hint}")
    # one name per setting: the imbalance factor is the top-level `imbalance`; dataset.imbalance only follows it
    if _overridden(overrides, "dataset.imbalance") is not None:
        check(False, "dataset.imbalance", _overridden(overrides, "dataset.imbalance"),
              "set by the top-level setting: use imbalance=... instead")
