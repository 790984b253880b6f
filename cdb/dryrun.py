"""`cdb-run ... dry_run=true`: build the dataset, print what a run would train on, and write nothing.

cli.run hands the command line here before Hydra starts, so no run directory,
.hydra/ folder or log file is created. Prints the class counts of train / val /
test, the head class, channels, image size, transforms, normalisation, the
many/medium/few groups and the model (built, so that one that cannot take the
data says so) and trainer a run would use.
"""
from __future__ import annotations

from omegaconf import OmegaConf

from .errors import ConfigError

FLAG = "dry_run"


def requested(argv: list[str]) -> tuple[bool, list[str]]:
    """(whether `dry_run=true` is on the command line, the command line without any dry_run=... item)."""
    ours = [a for a in argv if a.lstrip("+~").split("=", 1)[0] == FLAG]
    rest = [a for a in argv if a not in ours]
    on = False
    for a in ours:
        value = a.split("=", 1)[1].lower() if "=" in a else ""
        if value not in ("true", "false"):
            raise ConfigError(f"{a!r} is not allowed: dry_run=true or dry_run=false")
        on = value == "true"
    return on, rest


def compose(overrides: list[str]):
    """The config `cdb-run <overrides>` would run, composed without starting a Hydra job."""
    from hydra import compose as hcompose, initialize_config_dir

    from .cli import config_dir

    flags = [a for a in overrides if a.startswith("-")]
    if flags:
        raise ConfigError(f"dry_run=true shows one configuration; {flags[0]!r} is not allowed with it "
                          "(no -m/--multirun or other flags)")
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            return hcompose("config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:  # a bad override: Hydra's message, on one line
        raise ConfigError(" ".join(str(exc).split())) from None


def report(cfg) -> str:
    """The text a dry run prints for a composed config."""
    import pandas as pd

    from .data import build_dataset
    from .data.base import class_counts
    from .models import build_model
    from .recipe import resolve_auto

    ds_cfg = OmegaConf.to_container(cfg.dataset, resolve=True)
    data = build_dataset(ds_cfg.pop("name"), seed=int(cfg.seed), **ds_cfg)
    cfg = resolve_auto(cfg, data)
    c = data.num_classes
    table = pd.DataFrame({s: class_counts(getattr(data, s), c).tolist() for s in ("train", "val", "test")},
                         index=pd.Index(data.class_names, name="class"))
    table.loc["total"] = table.sum()
    info = data.info
    shape = tuple(data.input_shape)
    head = info.get("head")
    lines = [f"dataset {data.name}" + (f": {info['path']}" if "path" in info else "")
             + f", {c} classes, seed {cfg.seed}"]
    if head is not None:
        how = ("dataset.class_order" if cfg.dataset.get("class_order") else "the largest class")
        lines.append(f"head class: {head} ({how}); profile order: {', '.join(info['class_order'])}")
    profile = [f"{k}={info[k]}" for k in ("imbalance", "majority_ratio") if info.get(k) is not None]
    if profile:
        lines.append("imbalance profile: " + ", ".join(profile))
    lines.append(table.reset_index().to_string(index=False))
    lines.append(f"input: {shape[-3]} channel{'s' if shape[-3] > 1 else ''}, {shape[-2]}x{shape[-1]}"
                 + (", held in memory" if info.get("in_memory") else ""))
    if "transforms" in info:
        lines.append(f"transforms: train: {info['transforms']['train']}; eval: {info['transforms']['eval']}")
    lines.append(f"normalisation: mean {[round(m, 4) for m in data.mean]}, std {[round(s, 4) for s in data.std]}"
                 + (" (measured on the training split)" if cfg.dataset.get("mean", "") is None else ""))
    groups = info.get("groups")
    if groups:
        members = {k: [data.class_names[i] for i in v] for k, v in groups.items() if isinstance(v, list)}
        lines.append(f"groups: {info.get('group_thresholds', '')}; "
                     + "; ".join(f"{k}: {', '.join(v) or '-'}" for k, v in members.items()))
    chosen = cfg.get("auto_choices") or {}
    t = cfg.trainer
    preset = f"{chosen['trainer']}: " if "trainer" in chosen else ""
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model = build_model(model_cfg.pop("name"), c, shape, head=cfg.loss.get("head", "linear"),
                        **model_cfg)  # a model that cannot take the data says so
    params = sum(p.numel() for p in model.parameters())
    lines.append(f"model: {cfg.model.name} ({params / 1e6:.2f}M parameters); trainer: {preset}{t.length} {t.unit}s, batch {t.batch_size}, lr {t.lr}"
                 + (f" (chosen for {chosen['because']})" if chosen else ""))
    lines.append("dry run: nothing written")
    return "\n".join(lines)


def main(overrides: list[str]) -> None:
    print(report(compose(overrides)))
