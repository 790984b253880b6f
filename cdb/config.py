"""Where configs come from: the configs/ tree, one `compose()`, every OmegaConf resolver, the ConfigStore entry.

Importing this module registers everything the config tree needs (the resolvers `cdb_dirname`, `cdb_per_unit`,
`cdb_fraction_of`, `cdb_for_loss`, `cdb_after_half`, and TrainerConfig as trainer/base); no other module of cdb has import-time side effects.
The command line, the dry run, the tests and the scripts all compose through `compose()` or Hydra's own
`@hydra.main` with `config_dir()`.
"""
from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path

from hydra import compose as hydra_compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from cdb.core.errors import ConfigError, check
from cdb.rundir import NAME_EXCLUDED_KEYS
from cdb.train.config import TrainerConfig

CONFIG_PACKAGE = "cdb_configs"
GROUPS = ("dataset", "model", "loss", "trainer", "experiment")
MAX_DIRNAME = 200  # file systems allow 255 bytes per path component


def config_dir() -> Path:
    """The configs/ tree: the checkout's own when cdb runs from source, else the installed `cdb_configs` package."""
    source = Path(__file__).resolve().parent.parent / "configs"
    if (source / "config.yaml").is_file():
        return source
    return Path(str(files(CONFIG_PACKAGE)))


def compose(overrides: list[str] | tuple[str, ...] = (), hydra: bool = False) -> DictConfig:
    """The config `cdb-run OVERRIDES` would run, composed without starting a Hydra job (hydra=True keeps the
    `hydra` node, e.g. for sweeper params). A bad override raises Hydra's or OmegaConf's own exception, which
    cdb-run says in one line (cdb.cli.composition)."""
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=hydra)


def load_preset(group: str, name: str) -> DictConfig:
    """configs/<group>/<name>.yaml, with the presets its `defaults` list names merged under it (a name with no
    file, like trainer/base, is the structured config registered in Hydra's ConfigStore)."""
    path = config_dir() / group / f"{name}.yaml"
    if not path.is_file() and ConfigStore.instance().repo.get(group, {}).get(f"{name}.yaml") is not None:
        return OmegaConf.create(OmegaConf.to_container(ConfigStore.instance().load(f"{group}/{name}.yaml").node))
    if not path.is_file():
        raise ConfigError(f"{group}={name!r} has no config file {path}")
    cfg = OmegaConf.load(path)
    parents = [OmegaConf.create()]
    for parent in cfg.pop("defaults", []):
        if parent != "_self_":  # every preset lists _self_ last, so merging it last below is its place
            parents.append(load_preset(group, parent))
    return OmegaConf.merge(*parents, cfg)


# ---- resolvers ----------------------------------------------------------------------------------------------

def dirname(override_dirname: str) -> str:
    """`${cdb_dirname:...}`: run-directory name from the command-line overrides ('default' when there are none).

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


def per_unit(unit: str, epoch_value, step_value):
    """`${cdb_per_unit:${.unit},E,S}`: E when the trainer counts epochs, S when it counts steps, so a trainer
    preset's defaults follow trainer.unit (trainer.unit=step used to keep the epoch preset's eval_every=1)."""
    check(unit in ("epoch", "step"), "trainer.unit", unit, "epoch or step")
    return epoch_value if unit == "epoch" else step_value


def fraction_of(length, *fractions: float) -> list[int]:
    """`${cdb_fraction_of:${.length},0.75}`: milestones at those fractions of the run's length (one or more, e.g.
    `${cdb_fraction_of:${.length},0.6667,0.8333}`)."""
    return [int(round(float(length) * float(f))) for f in fractions]


def after_half(length) -> list[int]:
    """`${cdb_after_half:${.length}}`: Ren et al.'s lr drop (mnist_train.py, `step > num_steps // 2` with 0-based
    steps) as a milestone: the lr changes at 0-based step length // 2 + 1 (4001 of 8000, 2001 of 4000)."""
    return [int(length) // 2 + 1]


def for_loss(loss_name: str, names, special, default):
    """`${cdb_for_loss:${loss.name},[l2rw],4000,8000}`: `special` for the losses named in `names`, else `default`,
    for a protocol whose schedule depends on the method (Ren et al. train their own method, L2RW, for half the
    steps of their baselines: trainer/mnist_ren.yaml)."""
    return special if loss_name in list(names) else default


def name_excluded() -> list[str]:
    """`${cdb_name_excluded:}`: the settings left out of run-directory names (cdb.rundir.NAME_EXCLUDED_KEYS)."""
    return list(NAME_EXCLUDED_KEYS)


for _name, _fn in (("cdb_dirname", dirname), ("cdb_name_excluded", name_excluded), ("cdb_per_unit", per_unit), ("cdb_fraction_of", fraction_of),
                   ("cdb_for_loss", for_loss), ("cdb_after_half", after_half)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)

# TrainerConfig is the one source of the trainer defaults: registered as trainer/base, the schema every
# configs/trainer/*.yaml preset starts from (`defaults: [base, _self_]`), so a preset states only what it changes
# and `trainer.devices=2` (any field) works with every preset.
ConfigStore.instance().store(group="trainer", name="base", node=TrainerConfig)
