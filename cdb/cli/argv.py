"""Checks on cdb-run's command line before Hydra starts: one line instead of Hydra's page of error."""
from __future__ import annotations

import importlib.util
import os

from cdb.config import GROUPS, config_dir
from cdb.core.errors import CdbError

_JOBLIB, _SUBMITIT = "hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_submitit_launcher"
LAUNCHER_PLUGINS = {"local2": _JOBLIB, "joblib": _JOBLIB,  # hydra/launcher choice -> the plugin it needs
                    "slurm": _SUBMITIT, "submitit_slurm": _SUBMITIT, "submitit_local": _SUBMITIT}
_OPTUNA = "hydra_plugins.hydra_optuna_sweeper"
SWEEPER_PLUGINS = {"tune": _OPTUNA, "optuna": _OPTUNA}  # hydra/sweeper choice -> the plugin it needs
INFO_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i")


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


def _check_launcher(value: str) -> None:
    """hydra/launcher=... needs its Hydra plugin: name the pip extra that installs it."""
    module = LAUNCHER_PLUGINS.get(value)
    if module and importlib.util.find_spec(module) is None:
        plugin = module.split(".")[-1].replace("_", "-")
        raise CdbError(f"hydra/launcher={value} needs the {plugin} plugin, which is not installed: "
                       "pip install 'cdb[sweep]'")


def _check_sweeper(value: str) -> None:
    """hydra/sweeper=tune (or an experiment preset that selects it) needs hydra-optuna-sweeper: name the extra."""
    module = SWEEPER_PLUGINS.get(value)
    if module and importlib.util.find_spec(module) is None:
        raise CdbError(f"hydra/sweeper={value} needs the hydra-optuna-sweeper plugin, which is not installed: "
                       "pip install 'cdb[tune]'")


def _preset_sweeper(experiment: str) -> str | None:
    """The hydra/sweeper an experiment preset selects (`override /hydra/sweeper: NAME`), if any."""
    path = config_dir() / "experiment" / f"{experiment}.yaml"
    text = path.read_text() if path.is_file() else ""
    found = [ln.split(":", 1)[1].strip() for ln in text.splitlines() if "override /hydra/sweeper:" in ln]
    return found[0] if found else None


def check_group_choices(argv: list[str]) -> None:
    """Fail in one line on `group=choice` overrides that name no config (Hydra prints a page otherwise)."""
    from hydra.core.config_store import ConfigStore

    root = config_dir()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key == "hydra/launcher":
            _check_launcher(value)
        if key == "hydra/sweeper":
            _check_sweeper(value)
        if key in GROUPS and value not in ("null", ""):
            stored = ConfigStore.instance().repo.get(key, {})  # trainer/base: TrainerConfig, as `--help` lists it
            choices = sorted({p.stem for p in (root / key).glob("*.yaml")}
                             | {n.removesuffix(".yaml") for n in stored if n.endswith(".yaml")})
            for v in _group_values(key, value, choices):
                if v not in choices:
                    raise CdbError(f"{key}={v!r} is not allowed: one of {choices}")
                if key == "experiment":
                    _check_sweeper(_preset_sweeper(v) or "")


def check_override_types(argv: list[str]) -> None:
    """Fail in one line on a `trainer.<setting>=<value>` of the wrong type, sweep values included. The trainer
    node's schema (TrainerConfig) would refuse it too, but while composing, with Hydra's page of error."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from cdb.build.checks import check_trainer_types

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
            check_trainer_types({name: value})


def debug_requested(argv: list[str]) -> bool:
    """hydra.verbose=<anything but false> on the command line asks for debug output, tracebacks included."""
    return any(a.startswith("hydra.verbose=") and a.split("=", 1)[1].lower() not in ("false", "null", "[]", "")
               for a in argv)


def output_root(argv: list[str]) -> str | None:
    """The output root a command writes under (None when hydra.run/sweep.dir is given: Hydra decides)."""
    if any(a.startswith(("hydra.run.dir=", "hydra.sweep.dir=")) for a in argv):
        return None
    given = [a.split("=", 1)[1] for a in argv if a.startswith("output_root=")]
    return given[-1] if given else os.environ.get("CDB_OUTPUT_ROOT", "outputs")


def check_run_path(argv: list[str], root: str | None) -> None:
    """Before Hydra makes any folder: an empty output root, or a `name=` that would climb out of it, is refused."""
    from cdb.build.checks import check_name, check_output_root

    if root is not None:
        check_output_root(root)
    names = [a.split("=", 1)[1] for a in argv if a.lstrip("+~").startswith("name=")]
    if names:
        check_name(names[-1])


def asks_for_info(argv: list[str]) -> bool:
    """--help, --cfg, --info and the like: Hydra answers without a run, so nothing needs to be writable."""
    return any(a in INFO_FLAGS or a.startswith("--cfg") for a in argv)


def is_sweep(argv: list[str]) -> bool:
    """-m / --multirun (or hydra.mode=MULTIRUN): Hydra runs a sweep."""
    return any(a in ("-m", "--multirun") or a.replace(" ", "") == "hydra.mode=MULTIRUN" for a in argv)


def run_dir_of(argv: list[str]):
    """The directory Hydra will make for this single run (hydra.run.dir, resolved as Hydra resolves it), or None
    where it cannot be known here (Hydra then reports the command line's fault in its own words)."""
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    from cdb.config import compose

    hc = HydraConfig.instance()
    try:
        cfg = compose([a for a in argv if not a.startswith("-")], hydra=True)
        hc.set_config(cfg)
        return Path(str(cfg.hydra.run.dir))
    except Exception:  # noqa: BLE001  (any fault here is Hydra's to report, with its own words)
        return None
    finally:
        hc.cfg = None


VALUE_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn", "--experimental-rerun")


def _overrides(argv: list[str]) -> list[str]:
    """The `key=value` overrides of a command line (not the value that follows a flag such as --config-dir)."""
    return [a for i, a in enumerate(argv) if not a.startswith("-") and "=" in a
            and not (i and argv[i - 1] in VALUE_FLAGS)]


def last_wins(argv: list[str]) -> tuple[list[str], list[str]]:
    """A setting given more than once takes its last value, as Hydra's overrides do, and only that one reaches Hydra:
    `trainer.length=400 trainer.length=60` trained 60 units in a folder named with both. (argv less the earlier
    ones, the earlier ones.)"""
    keys = [a.split("=", 1)[0].lstrip("+~") if a in _overrides(argv) else None for a in argv]
    dropped = [a for i, (a, k) in enumerate(zip(argv, keys)) if k is not None and k in keys[i + 1:]]
    kept = [a for i, (a, k) in enumerate(zip(argv, keys)) if not (k is not None and k in keys[i + 1:])]
    return kept, dropped


def check_syntax(argv: list[str]) -> None:
    """Each override parses (Hydra's grammar): `name=日本語` is one line naming the argument, not a lexer traceback."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for arg in _overrides(argv):
        try:
            parser.parse_override(arg)
        except HydraException as exc:
            key, _, value = arg.partition("=")
            hint = (f"; quote a value with other characters: {key}='{value}'" if not value.isascii()
                    or any(c in value for c in " ,[]{}()'\"") else "")
            reason = str(exc).splitlines()[0].removeprefix("Error parsing override ").strip()
            raise CdbError(f"cannot read the argument {arg!r} ({reason}){hint}") from None


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
    import yaml
    from pathlib import Path

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
