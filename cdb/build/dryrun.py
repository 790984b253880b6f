"""What `cdb-run ... dry_run=true` prints (cdb.cli.dryrun): the dataset built, and what a run would train on.

Prints the class counts of train / val / test, the head class (and a tie, if the largest classes tie), the
builder's notes (e.g. a few colour images among grayscale ones), channels, image size, transforms, normalisation,
the many/medium/few groups and the model (built, so that one that cannot take the data says so) and trainer a run
would use.
"""
from __future__ import annotations

import pandas as pd
from omegaconf import OmegaConf

from cdb.build.checks import warmup_note
from cdb.build.recipe import resolve_auto
from cdb.core.errors import check
from cdb.data import build_dataset
from cdb.data.base import class_counts
from cdb.models import build_model
from cdb.train.batches import describe_sampling
from cdb.train.config import SAMPLERS


def report(cfg) -> str:
    """The text a dry run prints for a composed config."""
    ds_cfg = OmegaConf.to_container(cfg.dataset, resolve=True)
    data = build_dataset(ds_cfg.pop("name"), seed=int(cfg.seed), **ds_cfg)
    cfg = resolve_auto(cfg, data)
    lines = [*data_lines(cfg, data), *input_lines(cfg, data), model_line(cfg, data), *training_lines(cfg, data)]
    return "\n".join([*lines, "dry run: nothing written"])


def data_lines(cfg, data) -> list[str]:
    """The dataset, its head class and imbalance profile, the class counts of each split and the builder's notes."""
    info = data.info
    head = info.get("head")
    lines = [f"dataset {data.name}" + (f": {info['path']}" if "path" in info else "")
             + f", {data.num_classes} classes, seed {cfg.seed}"]
    if head is not None:
        tie = info.get("head_tie") or []
        how = ("dataset.class_order" if cfg.dataset.get("class_order") else
               f"a tie for the largest class between {', '.join(tie)}: the first in label order (sorted folder "
               "names) was taken; dataset.class_order chooses another" if tie else "the largest class")
        lines.append(f"head class: {head} ({how}); profile order: {', '.join(info['class_order'])}")
    profile = [f"{k}={info[k]}" for k in ("imbalance", "majority_ratio") if info.get(k) is not None]
    if profile:
        lines.append("imbalance profile: " + ", ".join(profile))
    lines.append(count_table(data).reset_index().to_string(index=False))
    return lines + [f"note: {note}" for note in info.get("notes") or []]


def count_table(data) -> pd.DataFrame:
    """Images per class (rows, then a total) of train, val and test (columns)."""
    table = pd.DataFrame({s: class_counts(getattr(data, s), data.num_classes).tolist()
                          for s in ("train", "val", "test")}, index=pd.Index(data.class_names, name="class"))
    table.loc["total"] = table.sum()
    return table


def input_lines(cfg, data) -> list[str]:
    """What the model sees: channels and size, the transforms, the normalisation and the many/medium/few groups."""
    info = data.info
    shape = tuple(data.input_shape)
    lines = [f"input: {shape[-3]} channel{'s' if shape[-3] > 1 else ''}, {shape[-2]}x{shape[-1]}"
             + (", held in memory" if info.get("in_memory") else "")]
    if "transforms" in info:
        lines.append(f"transforms: train: {info['transforms']['train']}; eval: {info['transforms']['eval']}")
    lines.append(f"normalisation: mean {[round(m, 4) for m in data.mean]}, std {[round(s, 4) for s in data.std]}"
                 + (" (measured on the training split)" if cfg.dataset.get("mean", "") is None else ""))
    groups = info.get("groups")
    if groups:
        members = {k: [data.class_names[i] for i in v] for k, v in groups.items() if isinstance(v, list)}
        lines.append(f"groups: {info.get('group_thresholds', '')}; "
                     + "; ".join(f"{k}: {', '.join(v) or '-'}" for k, v in members.items()))
    return lines


def model_line(cfg, data) -> str:
    """The model (built, so that one that cannot take the data says so) and its size, and the trainer's length,
    batch and lr, with why they were chosen when model/trainer=auto chose them."""
    chosen = cfg.get("auto_choices") or {}
    t = cfg.trainer
    preset = f"{chosen['trainer']}: " if "trainer" in chosen else ""
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model = build_model(model_cfg.pop("name"), data.num_classes, tuple(data.input_shape),
                        head=cfg.loss.get("head", "linear"), **model_cfg)  # a model that cannot take the data says so
    params = sum(p.numel() for p in model.parameters())
    return (f"model: {cfg.model.name} ({params / 1e6:.2f}M parameters); "
            f"trainer: {preset}{t.length} {t.unit}s, batch {t.batch_size}, lr {t.lr}"
            + (f" (chosen for {chosen['because']})" if "because" in chosen else "")
            + (f"; validation every {chosen['eval_every']}" if "eval_every" in chosen else ""))


def training_lines(cfg, data) -> list[str]:
    """How batches are drawn (the sampler), and the warm-up note when the loss and trainer call for one."""
    t = cfg.trainer
    sampler = t.get("sampler") or "instance"
    check(sampler in SAMPLERS, "trainer.sampler", sampler, "instance, class_balanced, sqrt or progressive")
    lines = [describe_sampling(sampler, data.class_counts, data.class_names, int(t.length or 1))]
    warmup = warmup_note(OmegaConf.to_container(cfg.loss, resolve=True), OmegaConf.to_container(t, resolve=True))
    return lines + ([f"note: {warmup}"] if warmup else [])
