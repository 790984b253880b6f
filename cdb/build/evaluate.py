"""Evaluate a saved run (cdb-eval): its config and checkpoint in, the metrics training reports out.

    evaluate_run(run_dir, checkpoint=None, data=None, ...) -> (report, path of RUN_DIR/eval/<name>.json)

The run's model and data are rebuilt from its config.yaml exactly as cdb.build.build_run built them (the same
dataset seed, so the same splits and normalisation), the checkpoint is loaded with weights_only=True
(cdb.rundir.io.load_checkpoint), and the split goes through the function training tests with
(cdb.train.evaluate.evaluate) and the one that turns counts into metrics (cdb.core.metrics.summarize), at the
run's evaluation settings: on the device the run trained on, its numbers are those of its metrics.json. With
`data`, a folder with one sub-folder per class of the run (names as the run's classes), its images are read as
the run's test images are (the same size, channels and normalisation) and evaluated instead of the test split.
The report goes to RUN_DIR/eval/<name>.json; the run's own metrics.json is never written.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from omegaconf import OmegaConf

from cdb.core.errors import CdbError
from cdb.core.metrics import summarize
from cdb.data import build_dataset
from cdb.data.base import TensorSplit
from cdb.data.images import ImageListDataset, load_images, scan_image_folder
from cdb.models import build_model
from cdb.rundir import BEST, CONFIG, EVAL, LAST, METRICS, settings_of
from cdb.rundir.claims import check_no_links
from cdb.rundir.io import atomic_write_json, load_checkpoint, read_json
from cdb.rundir.names import current_names, current_settings
from cdb.train import speed
from cdb.train.config import TrainerConfig, resolve_device
from cdb.train.evaluate import evaluate

CHECKPOINTS = {"last": LAST, "best": BEST}


def finished_run(run_dir: Path) -> tuple[dict, dict]:
    """(resolved config with its settings under their configs/ names: cdb.rundir.names, metrics) of a run directory
    cdb-run has finished; anything else is one line."""
    if not run_dir.is_dir():
        raise CdbError(f"{run_dir} is not a run directory: no such folder (give the folder that holds a run's "
                       "config.yaml, metrics.json and checkpoints/)")
    for name in (CONFIG, METRICS):
        if not (run_dir / name).is_file():
            raise CdbError(f"{run_dir} is not a finished run directory: {name} is missing (cdb-eval evaluates a run "
                           "that cdb-run has finished)")
    metrics = read_json(run_dir / METRICS)
    if not isinstance(metrics, dict) or metrics.get("status") != "complete":
        status = metrics.get("status") if isinstance(metrics, dict) else None
        raise CdbError(f"{run_dir} is not a finished run directory: its metrics.json says status {status!r}, not "
                       "'complete' (train it to the end first)")
    try:
        cfg = OmegaConf.to_container(OmegaConf.load(run_dir / CONFIG), resolve=True)
    except Exception as exc:  # a damaged or hand-edited config.yaml
        raise CdbError(f"{run_dir / CONFIG} cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(cfg, dict) or not all(isinstance(cfg.get(k), dict) for k in ("dataset", "model", "trainer")):
        raise CdbError(f"{run_dir / CONFIG} is not a run's config: it lacks the dataset, model or trainer settings")
    return current_names(cfg), metrics


def fitted_model(model, state: dict, path: Path, what: str) -> None:
    """Load the checkpoint's weights into `model`, refused in one line when they belong to another model or class
    count (a missing or extra tensor, or one of another shape)."""
    theirs, ours = state.get("model"), model.state_dict()
    if not isinstance(theirs, dict):
        raise CdbError(f"checkpoint {path} holds no model weights: it is not a cdb checkpoint")
    lacks = [k for k in ours if k not in theirs]
    extra = [k for k in theirs if k not in ours]
    if lacks or extra:
        k = (lacks or extra)[0]
        raise CdbError(f"checkpoint {path} is not a checkpoint of this run's model ({what}): "
                       + (f"it lacks {k}" if lacks else f"it holds {k}, which that model has not")
                       + f" ({len(lacks)} missing, {len(extra)} extra tensors)")
    for k, v in ours.items():
        if tuple(theirs[k].shape) != tuple(v.shape):
            raise CdbError(f"checkpoint {path} is not a checkpoint of this run's model ({what}): {k} has shape "
                           f"{tuple(theirs[k].shape)} there and {tuple(v.shape)} here")
    model.load_state_dict(theirs)


def check_settings(state: dict, cfg: dict, path: Path) -> None:
    """last.pt records its run's settings: a last.pt copied from another run is refused, naming a difference."""
    theirs, ours = state.get("settings"), settings_of(cfg)
    if not isinstance(theirs, dict):
        return  # best.pt (weights only) and checkpoints older than the settings record
    theirs = current_settings(theirs)
    # trainer.length aside: a run extended by a longer trainer.length keeps the config.yaml it started with
    diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k) and k != "trainer.length")
    if diff:
        k = diff[0]
        raise CdbError(f"checkpoint {path} belongs to another run: {k} is {theirs.get(k)!r} there and "
                       f"{ours.get(k)!r} in this run's config.yaml")


def folder_split(folder: Path, data):
    """The images of `folder` (<folder>/<class>/<image>, the run's classes) as a split like the run's test split:
    the same size, channels and evaluation transform; labels by class name."""
    if not folder.is_dir():
        raise CdbError(f"--data {folder} is not a folder (give a folder with one sub-folder of images per class)")
    names, items = scan_image_folder(folder)
    run_names = [str(n) for n in data.class_names]
    if sorted(names) != sorted(run_names):
        unknown = [n for n in names if n not in run_names]
        lacking = [n for n in run_names if n not in names]
        raise CdbError(f"--data {folder} does not have the run's classes: "
                       + (f"it has {unknown[:5]}, which the run was not trained on" if unknown else
                          f"it lacks {lacking[:5]}")
                       + f" (the run's {len(run_names)} classes: {run_names[:10]}{' ...' if len(run_names) > 10 else ''})")
    if not items:
        raise CdbError(f"--data {folder} holds no images (.jpg, .jpeg, .png, .bmp, .webp) in its class folders")
    items = [(p, run_names.index(names[label])) for p, label in items]   # the run's label of each class name
    labels = torch.as_tensor([label for _, label in items], dtype=torch.long)
    test = data.test
    if isinstance(test, TensorSplit):
        channels, size = int(test.x.shape[1]), int(test.x.shape[-1])
        return TensorSplit(load_images([folder / p for p, _ in items], channels, size), labels)
    if isinstance(test, ImageListDataset):
        return ImageListDataset(folder, items, test.transform, test.channels)
    raise CdbError(f"--data reads image folders, but this run's test split is {type(test).__name__} (not images "
                   "read the way a folder's are); evaluate it on its own test split")


def report_name(checkpoint: str, data: Path | None, name: str | None) -> str:
    """<checkpoint>_test (the run's own test split) or <checkpoint>_data_<folder name>, or the name given.

    An evaluation on other data never takes the name of the run's own test evaluation (<best|last>_test), whatever
    its folder is called, so that neither replaces the other."""
    own = {f"{c}_test" for c in ("best", "last", checkpoint)}
    if name is None:
        name = f"{checkpoint}_test" if data is None else f"{checkpoint}_data_{data.resolve().name or 'data'}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._=,+-]*", name) or name.endswith(".json"):
        raise CdbError(f"--name {name!r} is not allowed: a file name without '/' or '.json' (letters, digits, "
                       "._=,+-), written as RUN_DIR/eval/<name>.json")
    if data is not None and name in own:
        raise CdbError(f"--name {name!r} is the name of the run's own test evaluation; an evaluation on --data "
                       "needs another name")
    return name


def evaluate_run(run_dir: str | Path, checkpoint: str | None = None, data: str | Path | None = None,
                 device: str | None = None, data_root: str | None = None, name: str | None = None,
                 command: str = "") -> tuple[dict, Path]:
    """Evaluate a finished run's checkpoint; (the report, the path of RUN_DIR/eval/<name>.json it was written to)."""
    run_dir = Path(run_dir)
    cfg, metrics = finished_run(run_dir)
    checkpoint, path = checkpoint_path(run_dir, cfg, metrics, checkpoint)
    data_path = None if data is None else Path(data).expanduser()
    out_name = report_name(checkpoint, data_path, name)
    tcfg = eval_settings(cfg, device)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    splits = run_data(cfg, data_root)
    model, state = run_model(cfg, splits, path, checkpoint)
    dev = resolve_device(tcfg.device)
    net = speed.prepare_model(model.to(dev), tcfg)
    autocast = speed.autocast(tcfg, dev)
    report = {"run": str(run_dir), "checkpoint": checkpoint,
              "unit": state.get("unit"), "data": "test split" if data_path is None else str(data_path),
              "device": str(dev), "command": command}
    if data_path is None:
        report["val"], _ = measure(net, splits.val, splits, dev, tcfg, autocast)
        report["test"], report["test_confusion"] = measure(net, splits.test, splits, dev, tcfg, autocast)
    else:
        report["test"], report["test_confusion"] = measure(net, folder_split(data_path, splits), splits, dev, tcfg,
                                                           autocast)
    report["class_names"] = [str(n) for n in splits.class_names]
    out = run_dir / EVAL / f"{out_name}.json"
    check_no_links(out.parent, run_dir)  # eval/ is made here as a real folder, never written through a link
    atomic_write_json(out, report)
    return report, out


def checkpoint_path(run_dir: Path, cfg: dict, metrics: dict, checkpoint: str | None) -> tuple[str, Path]:
    """(which checkpoint, its file): the one asked for, else the one the run selected (metrics.json, then
    trainer.select), else last; refused in one line when it is not best or last, or its file is missing."""
    checkpoint = checkpoint or metrics.get("selected") or cfg["trainer"].get("select") or "last"
    if checkpoint not in CHECKPOINTS:
        raise CdbError(f"--checkpoint {checkpoint!r} is not allowed: best or last")
    path = run_dir / CHECKPOINTS[checkpoint]
    if not path.is_file():
        raise CdbError(f"{run_dir} has no {checkpoint} checkpoint ({path} is missing)"
                       + ("; --checkpoint last evaluates the final model" if checkpoint == "best" else ""))
    return checkpoint, path


def eval_settings(cfg: dict, device: str | None) -> TrainerConfig:
    """The run's evaluation settings, on `device` when given (a run-time-only setting such as tensorboard needs
    nothing here)."""
    return TrainerConfig.from_dict({**cfg["trainer"], "tensorboard": False, "devices": 1, "compile": False,
                                    **({"device": device} if device else {})})


def run_data(cfg: dict, data_root: str | None):
    """The run's dataset, rebuilt with its seed (the same splits and normalisation), read from `data_root` when
    given."""
    ds = dict(cfg["dataset"])
    if data_root is not None:
        ds["root"] = data_root
    return build_dataset(ds.pop("name"), seed=int(cfg["seed"]), **ds)


def run_model(cfg: dict, splits, path: Path, checkpoint: str):
    """(the run's model with the weights of `path`, the checkpoint's state); a last.pt of another run, or weights
    of another model, are refused in one line."""
    model_cfg = dict(cfg["model"])
    model_name = model_cfg.pop("name")
    torch.manual_seed(int(cfg["seed"]))
    model = build_model(model_name, splits.num_classes, splits.input_shape, head=cfg.get("loss", {}).get("head", "linear"),
                        **model_cfg)
    state = load_checkpoint(path)
    if checkpoint == "last":
        check_settings(state, cfg, path)
    fitted_model(model, state, path, f"{model_name}, {splits.num_classes} classes")
    return model, state


def measure(net, split, splits, dev, tcfg, autocast) -> tuple[dict, list]:
    """(the metrics training reports, the confusion matrix as lists) of `net` on one split, at the run's
    evaluation settings."""
    res = evaluate(net, split, splits, dev, tcfg.eval_batch_size, autocast=autocast, on_device=tcfg.data_on_device,
                   num_workers=tcfg.num_workers)
    return summarize(res.confusion, res.topk_correct, splits.info.get("groups")), res.confusion.tolist()
