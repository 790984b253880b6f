"""model=auto and trainer=auto: pick the model and the trainer recipe from the data, and say so.

dataset=folder defaults to both, because a folder's images may be 28x28 digits or
photos. The choice is made once the dataset is built (its channels and image
size are known), written into the run's config.yaml (model.name, the filled
trainer.* values and `auto_choices`, which says what was chosen and why) and
logged. Settings given on the command line (model=..., trainer=..., trainer.lr=...)
are never replaced: trainer=auto leaves every trainer setting null, and only the
nulls are filled from the chosen preset (unresolved, so that its unit-following
values follow this run's trainer.unit). With trainer.unit=step, a null
trainer.eval_every (trainer/small_folder.yaml's step value) becomes the steps of
one pass over the training split, recorded in auto_choices.eval_every.
"""
from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf, open_dict

from cdb.data.base import DatasetSplits
from cdb.data.folder import SMALL  # images up to this side get the small-image trainer
from cdb.config import load_preset
from cdb.models import choose_model
from cdb.train.batches import steps_per_unit

log = logging.getLogger(__name__)

SMALL_TRAINER, LARGE_TRAINER = "small_folder", "imagenet_lt_oltr"


def choose_trainer(input_shape: tuple[int, ...]) -> str:
    """trainer=auto: the CPU-friendly small-image preset up to SMALL px, OLTR's ImageNet-LT recipe above."""
    return SMALL_TRAINER if max(input_shape[-2:]) <= SMALL else LARGE_TRAINER


def resolve_auto(cfg: DictConfig, data: DatasetSplits) -> DictConfig:
    """Replace model.name=auto and the null trainer settings of trainer=auto by the choice for `data`."""
    shape = tuple(data.input_shape)
    what = f"{shape[-2]}x{shape[-1]} images, {shape[-3]} channel{'s' if shape[-3] > 1 else ''}"
    chosen = {}
    if cfg.model.get("name") == "auto":
        name = choose_model(shape)
        with open_dict(cfg):
            cfg.model = OmegaConf.merge(load_preset("model", name), {k: v for k, v in cfg.model.items() if k != "name"})
        chosen["model"] = name
    # with trainer.unit=step, a null eval_every (small_folder's step value) is one pass over the training split
    per_pass = cfg.trainer.get("unit") == "step" and cfg.trainer.get("eval_every") is None
    unset = [k for k, v in cfg.trainer.items() if v is None and not (per_pass and k == "eval_every")]
    if unset:
        name = choose_trainer(shape)
        raw = OmegaConf.to_container(load_preset("trainer", name), resolve=False)  # ${.unit}: this run's unit
        with open_dict(cfg):
            for k in unset:
                if k in raw:
                    cfg.trainer[k] = raw[k]
        chosen["trainer"] = name
    t = cfg.trainer
    if t.get("unit") == "step" and t.get("eval_every") is None and isinstance(t.get("batch_size"), int):
        n = len(data.train)
        steps = steps_per_unit(n, t.batch_size, "epoch")
        with open_dict(cfg):
            cfg.trainer.eval_every = steps
        chosen["eval_every"] = f"{steps} steps: one pass over the {n} training images at batch {t.batch_size}"
        log.info("trainer.eval_every=%d (%s)", steps, chosen["eval_every"])
    if chosen:
        picked = {k: v for k, v in chosen.items() if k in ("model", "trainer")}
        with open_dict(cfg):
            cfg.auto_choices = {**chosen, **({"because": what} if picked else {})}
        if picked:
            log.info("%s: chose %s for %s (model=... / trainer=... on the command line choose yourself)",
                     cfg.dataset.get("name"), ", ".join(f"{k}={v}" for k, v in picked.items()), what)
    return cfg
