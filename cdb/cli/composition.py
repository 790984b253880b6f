"""Composition errors as one line: Hydra and OmegaConf check the command line while they compose the config (unknown
keys, misspelt choices, wrong types, deletions, `group=null`, override syntax); `one_line(exc)` turns their own
exceptions into `<key>=<value> is not allowed: ...` or `<key> is not a setting ...`, with "did you mean" where a
close name exists. Before Hydra starts, a key given twice keeps only its last value, and `+key` for a key that no
part of the config has is refused.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from pathlib import Path

import yaml
from hydra.errors import MissingConfigException, OverrideParseException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ConfigTypeError, OmegaConfBaseException, \
    ValidationError

from cdb.config import GROUPS, config_dir
from cdb.core.errors import CdbError, ConfigError

# what a value of each schema type looks like, said as `<key>=<value> is not allowed: <this>`
ALLOWED = {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list, e.g. [3000]"}
# Hydra plugins whose configs a cdb preset builds on, and the extra that installs each
PLUGIN_EXTRAS = {"hydra/launcher/joblib": ("hydra-joblib-launcher", "sweep"),
                 "hydra/launcher/submitit_slurm": ("hydra-submitit-launcher", "sweep"),
                 "hydra/launcher/submitit_local": ("hydra-submitit-launcher", "sweep"),
                 "hydra/sweeper/optuna": ("hydra-optuna-sweeper", "tune")}
# the top-level keys of cdb-run's config that are not in configs/config.yaml itself
OTHER_TOP_LEVEL = (*GROUPS, "dataset_loss", "search_space", "hydra", "dry_run")


def _did_you_mean(word: str, candidates) -> str:
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def top_level_keys() -> list[str]:
    return [*OmegaConf.load(config_dir() / "config.yaml").keys(), *OTHER_TOP_LEVEL]


def _keys_under(full_key: str, object_type) -> list[str]:
    """The settings beside `full_key`: a schema's fields, else every key the configs of that group use."""
    parent = full_key.rpartition(".")[0]
    if dataclasses.is_dataclass(object_type):
        return [f"{parent}.{f.name}" for f in dataclasses.fields(object_type)]
    if not parent:
        return top_level_keys()
    group = parent.split(".")[0]
    keys = {k for path in (config_dir() / group).glob("*.yaml")
            for k in (OmegaConf.load(path).get(group) or OmegaConf.load(path)).keys()
            if isinstance(k, str) and k != "defaults"}
    return [f"{parent}.{k}" for k in keys]


def _allowed(object_type, key: str) -> str:
    """What a field of a structured config takes, from its type (typing.get_type_hints, not the annotation text)."""
    hint = typing.get_type_hints(object_type).get(key) if dataclasses.is_dataclass(object_type) else None
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    kind = typing.get_origin(args[0]) or args[0]
    return ALLOWED.get(kind, "a value of the setting's type")


def one_line(exc: BaseException, argv: list[str]) -> str | None:
    """The line for a composition error, or None when `exc` is not one."""
    cause = exc
    while cause.__cause__ is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file in PLUGIN_EXTRAS:
        plugin, extra = PLUGIN_EXTRAS[exc.missing_cfg_file]
        return (f"{exc.missing_cfg_file} needs the {plugin} plugin, which is not installed: "
                f"pip install 'cdb-loss[{extra}]'")
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        group, _, value = exc.missing_cfg_file.rpartition("/")
        options = list(exc.options or [])
        return f"{group}={value!r} is not allowed: one of {options}{_did_you_mean(value, options)}"
    if isinstance(exc, OverrideParseException):
        bad = str(exc).splitlines()[0].partition(": ")[2] or str(exc).splitlines()[0]
        return (f"{bad!r} is not a valid override: write key=value, and quote a value with other characters "
                "(key='value'; https://hydra.cc/docs/advanced/override_grammar/basic)")
    if isinstance(exc, ValueError) and str(exc).startswith("Config group override must be"):
        nulls = [a.split("=")[0] for a in argv if a.endswith("=null") and a.split("=")[0] in GROUPS]
        group = nulls[0] if nulls else "a config group"
        options = sorted(p.stem for p in (config_dir() / group).glob("*.yaml")) if nulls else []
        return f"{group}=null is not allowed: one of {options}"
    if isinstance(cause, ConfigTypeError) and "deletion" in str(cause):
        return f"~{cause.full_key}: a setting cannot be deleted; give it a value instead ({cause.full_key}=...)"
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.full_key:
        where = "" if "." in cause.full_key else " of cdb-run (cdb-run --help lists them)"
        return (f"{cause.full_key} is not a setting{where}"
                f"{_did_you_mean(cause.full_key, _keys_under(cause.full_key, cause.object_type))}")
    if isinstance(cause, ValidationError) and cause.full_key:
        return f"{cause.full_key}={cause.value!r} is not allowed: {_allowed(cause.object_type, cause.key)}"
    return None


def check_command_line(argv: list[str]) -> list[str]:
    """The command line with each key once: a key given twice keeps its last value (as Hydra does), and the earlier
    one leaves the command line, so that the run directory is named after the value that runs. `+key=...` for a key
    that no part of the config has (Hydra would add it, and nothing would read it) is refused in one line."""
    last = {}
    for i, arg in enumerate(argv):
        if not arg.startswith("-") and "=" in arg:
            bare = arg.split("=", 1)[0].lstrip("+~")
            top = bare.split(".")[0].split("/")[0]
            if arg.startswith("+") and top not in top_level_keys():
                raise ConfigError(f"{bare} is not a setting of cdb-run{_did_you_mean(top, top_level_keys())}")
            last[bare] = i
    return [a for i, a in enumerate(argv)
            if a.startswith("-") or "=" not in a or last[a.split("=", 1)[0].lstrip("+~")] == i]


def resolve_shown_config(argv: list[str]) -> list[str]:
    """`--cfg job` (or `-c job`) prints the values the run reads: Hydra's --resolve is added, so that computed
    settings (trainer.length from the loss, the milestones from the length) show as numbers, not as
    `${cdb_for_loss:...}`. `--cfg hydra` / `--cfg all` are left as Hydra prints them."""
    pairs = zip(argv, argv[1:] + [""])
    asks_job = any(a in ("--cfg", "-c") and b == "job" for a, b in pairs) or "--cfg=job" in argv
    return [*argv, "--resolve"] if asks_job and "--resolve" not in argv else argv


def expand_home(argv: list[str]) -> list[str]:
    """`output_root=~/x` (or CDB_OUTPUT_ROOT='~/x', which no shell expands inside quotes) means the home folder, not a
    folder named `~` in the working directory; a `~user` that does not exist is refused."""
    env = os.environ.get("CDB_OUTPUT_ROOT")
    if env and env.startswith("~"):
        os.environ["CDB_OUTPUT_ROOT"] = _home(env, "CDB_OUTPUT_ROOT")
    return [f"output_root={_home(a.split('=', 1)[1], 'output_root')}" if a.startswith("output_root=~") else a
            for a in argv]


def _home(path: str, setting: str) -> str:
    out = os.path.expanduser(path)
    if out.startswith("~"):
        raise CdbError(f"{setting}={path!r} is not allowed: {path.split('/')[0]} is no user's home folder here; "
                       "give an absolute path")
    return out


def check_config_dir(argv: list[str]) -> None:
    """`--config-dir DIR` (or -cd): every YAML file there reads as plain YAML. Hydra would never run a `!!python`
    tag either (it loads safely), but it reports one with a page of traceback; this is one line naming the file."""
    dirs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--config-dir", "-cd")]
    dirs += [a.split("=", 1)[1] for a in argv if a.startswith("--config-dir=")]
    for d in dirs:
        for path in sorted(Path(d).rglob("*.yaml")) if Path(d).is_dir() else []:
            try:
                yaml.safe_load(path.read_text())
            except (yaml.YAMLError, ValueError, OSError) as exc:
                reason = " ".join(str(getattr(exc, "problem", None) or exc).split())
                raise CdbError(f"--config-dir {d}: {path} cannot be read as plain YAML ({reason}); tags such as "
                               "!!python are never run: remove them") from None
