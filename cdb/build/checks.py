"""Checks on a composed config that no single builder can make.

Each check fails in one line (cdb.core.errors.ConfigError) naming the setting, the value and what is allowed,
before a run directory is touched: the values of top-level settings, which have no schema (seed=abc, threads=-1;
the trainer node's schema, TrainerConfig, types trainer.* while Hydra composes), and settings that the chosen
dataset does not read (imbalance=50 on MNIST would otherwise be silently ignored yet named in the run directory).
"""
from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from cdb.core.errors import check

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
    progress = OmegaConf.select(cfg, "trainer.progress")  # typed Any by the schema: auto, true or false
    check(progress is None or isinstance(progress, bool) or progress == "auto", "trainer.progress", progress,
          "auto, true or false")
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


def warmup_note(loss: dict, trainer: dict) -> str | None:
    """One line when CDB's warm-up (loss.warmup validations of plain CE) is not shorter than the run's validations:
    the run would be plain CE throughout while labelled CDB. None otherwise."""
    warmup = loss.get("warmup") or 0
    length, every = trainer.get("length"), trainer.get("eval_every")
    if loss.get("weighting") != "cdb" or not warmup or not length or not every:
        return None
    validations = -(-int(length) // int(every))  # every eval_every units, and at the end
    if int(warmup) < validations:
        return None
    return (f"loss.warmup={warmup} is not shorter than this run's {validations} validations (trainer.length="
            f"{length}, trainer.eval_every={every}): CDB never updates its weights and the run is plain CE; lower "
            "loss.warmup or validate more often")
