"""The decoupled second stage of Kang et al. 2020 ("Decoupling representation and classifier for long-tailed
recognition", sec. 4), started from a finished run directory and written to a new one (`cdb-decouple`):

    crt       classifier re-training: features frozen, the classifier re-initialised and re-trained with
              class-balanced sampling
    tau_norm  tau-normalisation: w_j / ||w_j||^tau on the trained classifier's weight rows, tau chosen on the
              validation split from a grid (0, 0.1, ..., 2 by default); nothing is trained
    lws       learnable weight scaling: logits f_j * z_j of the frozen classifier, f (init 1) trained with
              class-balanced sampling

    decouple(source, method, ...) -> (run directory, metrics)

The source run is only read: its config.yaml (which data, model and seed), metrics.json (finished?) and one
checkpoint (loaded with weights_only=True). The new run directory has the files of a run (config.yaml, data.json,
log.jsonl, run.log, metrics.json with test metrics, checkpoints/); its config is the source's with the stage-2
trainer settings, the stage-2 loss (plain CE, labelled with the method: "cRT", "tau-norm (tau=0.7)", "LWS", so it
fills no row of the paper's tables) and a `decouple` node (method, label, source, source_setting, ...).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from pathlib import Path
from typing import Iterator, Sequence

import torch
import yaml
from omegaconf import OmegaConf

from cdb.config import load_preset
from cdb.core.errors import CdbError, user_message
from cdb.core.logs import RunLogHandler
from cdb.data import build_dataset
from cdb.losses import build_criterion
from cdb.models import build_model
from cdb.models.decoupled import Decoupled, ScaledLinear, split_classifier, tau_normalized
from cdb.rundir import BEST, CONFIG, DATA, LAST, LOG, METRICS, RUN_LOG, RUNTIME_KEYS, claims, settings_of, setting_name
from cdb.rundir.io import atomic_write_json, atomic_write_text, load_checkpoint, read_json, write_jsonl
from cdb.train.batches import describe_sampling, eval_batches
from cdb.train.config import TrainerConfig, resolve_device
from cdb.train.decouple import TAU_GRID, choose_tau, features_of
from cdb.train.loop import train_alone
from cdb.train.run import RunState

log = logging.getLogger(__name__)

METHODS = {"crt": "cRT", "tau_norm": "tau-norm", "lws": "LWS"}
PASSES = 10   # default stage-2 length: passes over the training split (Kang et al. re-train for a few epochs)
FILE_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"   # as cdb-run's run.log


def label_of(method: str, tau: float | None = None) -> str:
    """The row name of a decoupled run: cRT, LWS, or tau-norm (tau=<chosen tau>)."""
    return f"tau-norm (tau={tau:g})" if method == "tau_norm" else METHODS[method]


def read_source(source: Path) -> tuple[dict, dict]:
    """(config, metrics) of a finished run directory; anything else is refused in one line."""
    if not source.is_dir():
        raise CdbError(f"{source} is not a run directory (no such folder)")
    metrics_path, config_path = source / METRICS, source / CONFIG
    if not metrics_path.exists():
        raise CdbError(f"{source} is not a finished run: it has no {METRICS} (still training, or not a run "
                       "directory); finish it first (the same cdb-run command with resume=true)")
    metrics = read_json(metrics_path, "repair it or choose another source run")
    status = metrics.get("status") if isinstance(metrics, dict) else None
    if status != "complete":
        raise CdbError(f"{source} is not a finished run: its {METRICS} has status {status!r}, not 'complete'"
                       + (" (it diverged: there is no trained classifier to decouple)" if status == "diverged" else ""))
    if not config_path.exists():
        raise CdbError(f"{source} is not a finished run: it has no {CONFIG}, so its data and model are unknown")
    try:
        cfg = yaml.safe_load(config_path.read_text())
    except yaml.YAMLError as exc:
        raise CdbError(f"{config_path} cannot be read as YAML ({str(exc).splitlines()[0]})") from None
    nodes = ("dataset", "model", "loss", "trainer")
    if not isinstance(cfg, dict) or not all(isinstance(cfg.get(k), dict) for k in nodes):
        raise CdbError(f"{config_path} is not the config of a cdb run (it lacks dataset, model, loss or trainer)")
    if "decouple" in cfg:
        raise CdbError(f"{source} is itself a decoupled run ({cfg['decouple'].get('label')}); decouple its source "
                       f"run instead ({cfg['decouple'].get('source')})")
    return cfg, metrics


def default_out(source: Path, method: str) -> Path:
    """Beside the source: <sweep>/<source overrides>,decouple=<method>/seed=<n> for a run directory seed=<n>
    (so that `cdb-table compare --runs <sweep>` lists the source and its decoupled runs), else
    <source>,decouple=<method>."""
    if source.name.startswith("seed="):
        return source.parent.parent / f"{source.parent.name},decouple={method}" / source.name
    return source.parent / f"{source.name},decouple={method}"


def stage2_trainer(src: dict, method: str, n_train: int, length: int | None, lr: float | None,
                   batch_size: int | None, device: str | None) -> dict:
    """The stage-2 trainer settings: the source's, with class-balanced sampling, `length` units (default: PASSES
    passes over the training split, in the source's unit), validation once a pass, cosine lr from `lr` (default:
    the source's lr) to 0, one process. tau_norm trains nothing: the source's settings, as they were."""
    t = dict(src)
    if device:
        t["device"] = device
    t["devices"] = 1
    if method == "tau_norm":
        return t
    if batch_size is not None:
        t["batch_size"] = int(batch_size)
    per_pass = math.ceil(n_train / t["batch_size"]) if t["unit"] == "step" else 1
    t["length"] = int(length) if length is not None else PASSES * per_pass
    t.update(eval_every=min(per_pass, t["length"]), milestones=[], schedule="cosine", lr_warmup=0,
             sampler="class_balanced", checkpoint_every=1)
    if lr is not None:
        t["lr"] = float(lr)
    return t


@contextlib.contextmanager
def run_log(run_dir: Path) -> Iterator[None]:
    """<run_dir>/run.log at INFO (as cdb-run writes it) while the stage runs."""
    root = logging.getLogger()
    handler = RunLogHandler(run_dir / RUN_LOG, delay=True)
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    handler.setLevel(logging.INFO)
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(level)


def decouple(source: str | Path, method: str, out: str | Path | None = None, length: int | None = None,
             lr: float | None = None, batch_size: int | None = None, taus: Sequence[float] | None = None,
             checkpoint: str = "selected", device: str | None = None, threads: int | None = None,
             progress: bool | None = None, data_root: str | None = None) -> tuple[Path, dict]:
    """Run the decoupled stage `method` on the finished run `source`, into a new run directory (default:
    default_out); returns (that directory, its metrics)."""
    if method not in METHODS:
        raise CdbError(f"--method {method!r} is not allowed: one of {', '.join(METHODS)}")
    if checkpoint not in ("selected", "last", "best"):
        raise CdbError(f"--checkpoint {checkpoint!r} is not allowed: selected, last or best")
    if method == "tau_norm" and (length, lr, batch_size) != (None, None, None):
        raise CdbError("tau_norm trains nothing: --length, --lr and --batch-size are for crt and lws")
    for flag, value in (("--length", length), ("--lr", lr), ("--batch-size", batch_size), ("--threads", threads)):
        if value is not None and not value > 0:  # 0 is a value given, not "the default"
            raise CdbError(f"{flag} {value:g} is not allowed: a number > 0 (leave it out for the default)")
    if method != "tau_norm" and taus is not None:
        raise CdbError("--taus is for tau_norm only")
    source = Path(source).absolute()
    cfg, metrics = read_source(source)
    run_dir = Path(out).absolute() if out else default_out(source, method)
    if run_dir == source or source in run_dir.parents or run_dir in source.parents:
        raise CdbError(f"--out {run_dir} is the source run, inside it or above it: the source is never modified; "
                       "choose a folder of its own")
    if (run_dir / METRICS).exists() or claims.logged_something(run_dir):  # a stopped stage keeps what it logged
        raise CdbError(f"{run_dir} already holds a run; remove that directory, or choose another with --out")
    with claims.claim(run_dir, resume=False), run_log(run_dir):
        try:
            return run_dir, _run(source, cfg, metrics, method, run_dir, length, lr, batch_size, taus, checkpoint,
                                 device, threads, progress, data_root)
        except BaseException as exc:
            log.error("decoupling failed: %s", user_message(exc) or repr(exc), extra={"console": False})
            raise


def _load_model(source: Path, cfg: dict, metrics: dict, checkpoint: str, data):
    """The source run's model with the weights of its checkpoint (weights_only=True)."""
    which = metrics.get("selected", "last") if checkpoint == "selected" else checkpoint
    path = source / (BEST if which == "best" else LAST)
    if not path.exists():
        raise CdbError(f"{source} has no {path.relative_to(source)} (the {which} checkpoint); choose another "
                       "with --checkpoint")
    state = load_checkpoint(path)
    if not isinstance(state.get("model"), dict):
        raise CdbError(f"checkpoint {path} holds no model weights")
    model_cfg = dict(cfg["model"])
    torch.manual_seed(int(cfg["seed"]))
    model = build_model(model_cfg.pop("name"), data.num_classes, data.input_shape,
                        head=cfg["loss"].get("head", "linear"), **model_cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CdbError(f"checkpoint {path} does not fit the model of {source / CONFIG} "
                       f"({str(exc).splitlines()[0]})") from None
    unit = state.get("unit")
    return model, which, path, unit


def _run(source, cfg, src_metrics, method, run_dir, length, lr, batch_size, taus, checkpoint, device, threads,
         progress, data_root) -> dict:
    """Stage 2 into `run_dir`: the source's data and model rebuilt, its classifier split off, the new head made,
    the run recorded, then trained (crt, lws) or finished as it is (tau_norm); returns its metrics."""
    t0 = time.time()
    if threads:
        torch.set_num_threads(int(threads))
    seed = int(cfg["seed"])
    if data_root:
        cfg = {**cfg, "data_root": str(data_root), "dataset": {**cfg["dataset"], "root": str(data_root)}}
    data = _source_data(source, cfg, seed)
    model, which, _, unit = _load_model(source, cfg, src_metrics, checkpoint, data)
    original = copy.deepcopy(model)
    features, linear = split_classifier(model, f"the model of {source}")
    trainer = stage2_trainer(cfg["trainer"], method, len(data.train), length, lr, batch_size, device)
    if progress is not None:
        trainer["progress"] = bool(progress)
    tcfg = TrainerConfig.from_dict(trainer)
    dev = resolve_device(tcfg.device)
    _check_last_layer(source, original, features, linear, data, tcfg)
    del original
    info = _source_info(source, cfg, method, which)
    head, rows = _new_head(method, features, linear, data, tcfg, dev, taus, seed, info)
    info["label"] = label_of(method, info.get("tau"))
    new_cfg = _stage2_config(cfg, trainer, info)
    net = Decoupled(features, head)
    criterion = build_criterion(new_cfg["loss"], data.num_classes, data.class_counts)
    state = RunState(net, data, criterion, tcfg, run_dir, seed=seed, settings=settings_of(new_cfg))
    text, summary = yaml.safe_dump(new_cfg, sort_keys=False), data.summary()
    _log_stage(method, info["label"], source, which, unit, net, text, summary, data, tcfg)
    atomic_write_text(run_dir / CONFIG, text)
    atomic_write_json(run_dir / DATA, summary)
    if method == "tau_norm":
        write_jsonl(run_dir / LOG, rows)
        out = state.finish(time.time() - t0)
    else:
        out = train_alone(state)
    # the unit of the source checkpoint may differ between seeds (best): in metrics.json, not among the settings
    out["decouple"] = {**{k: v for k, v in info.items() if k not in ("source_loss", "source_trainer")},
                       "source_unit": unit}
    atomic_write_json(run_dir / METRICS, out)
    return out


def _source_data(source: Path, cfg: dict, seed: int):
    """The source run's dataset, rebuilt from its config; refused when its training class counts differ from the
    ones the source recorded in data.json (the files changed since it trained)."""
    ds_cfg = dict(cfg["dataset"])
    data = build_dataset(ds_cfg.pop("name"), seed=seed, **ds_cfg)
    recorded = read_json(source / DATA) if (source / DATA).exists() else {}
    if recorded.get("train_class_counts") not in (None, data.class_counts.tolist()):
        raise CdbError(f"the data of {source} has changed since it trained: its {DATA} records training class "
                       f"counts {recorded['train_class_counts']}, the files give {data.class_counts.tolist()}")
    return data


def _check_last_layer(source: Path, original, features, linear, data, tcfg) -> None:
    """Refuse a model whose classifier is not its last operation: the logits of `original` must be `linear`
    applied to `features` (checked on a validation batch)."""
    x, _ = next(eval_batches(data.val, data, min(tcfg.eval_batch_size, 64), "cpu"))
    with torch.no_grad():
        if not torch.allclose(original.eval()(x), linear(features.eval()(x)), rtol=1e-4, atol=1e-5):
            raise CdbError(f"the model of {source} ({type(original).__name__}) has no linear classifier to decouple: "
                           "its outputs are not those of its last nn.Linear layer applied to the layers before it")


def _source_info(source: Path, cfg: dict, method: str, which: str) -> dict:
    """The `decouple` node of the new config: the method and where its features come from (the label is set once
    the head is made)."""
    return {"method": method, "label": None, "source": str(source),
            "source_setting": setting_name(source, cfg), "source_label": cfg["loss"].get("label"),
            "checkpoint": which,
            "source_loss": cfg["loss"],   # what trained the features (less the run-time settings)
            "source_trainer": {k: v for k, v in cfg["trainer"].items() if f"trainer.{k}" not in RUNTIME_KEYS}}


def _new_head(method: str, features, linear, data, tcfg, dev, taus, seed: int, info: dict) -> tuple:
    """(the stage-2 classifier, log rows): crt a re-initialised nn.Linear, lws a ScaledLinear of the frozen one,
    tau_norm the classifier normalised with the tau chosen on the validation split (recorded in `info`, with the
    accuracy of each tau of the grid as the rows)."""
    if method == "crt":
        torch.manual_seed(seed)
        return torch.nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None), []
    if method == "lws":
        return ScaledLinear(linear), []
    grid = tuple(float(t) for t in (TAU_GRID if taus is None else taus))
    if not grid or any(not math.isfinite(t) or t < 0 for t in grid):
        raise CdbError(f"--taus {list(grid)} is not allowed: numbers >= 0")
    f_val, y_val = features_of(features.to(dev), data.val, data, dev, tcfg.eval_batch_size,
                               tcfg.data_on_device, tcfg.num_workers)
    tau, accs = choose_tau(f_val, y_val, linear.to(dev), grid, data.num_classes)
    rows = [{"unit": 0, "tau_norm": t, "val_balanced_accuracy": a} for t, a in zip(grid, accs)]
    for r in rows:
        log.info("tau-norm: tau %g: val balanced acc %.2f", r["tau_norm"], r["val_balanced_accuracy"])
    log.info("tau-norm: tau %g chosen (the highest validation balanced accuracy, %.2f; the test split is not "
             "looked at)", tau, max(accs))
    info.update(tau=tau, taus=list(grid), val_balanced_accuracy_by_tau=accs)
    return tau_normalized(linear, tau), rows


def _stage2_config(cfg: dict, trainer: dict, info: dict) -> dict:
    """The new run's config: the source's, with the stage-2 trainer, plain CE labelled with the method, and the
    `decouple` node (no auto_choices: nothing is chosen for this run)."""
    loss = {**OmegaConf.to_container(load_preset("loss", "ce"), resolve=True), "label": info["label"]}
    new_cfg = {**copy.deepcopy(cfg), "trainer": trainer, "loss": loss, "decouple": info}
    new_cfg.pop("auto_choices", None)
    return new_cfg


def _log_stage(method: str, label: str, source: Path, which: str, unit, net, text: str, summary: dict, data,
               tcfg) -> None:
    """Into run.log: what stage 2 starts from, the parameters frozen and trained in `net`, the settings (`text`),
    the data and (for a stage that trains) the sampling."""
    trained = sum(p.numel() for p in net.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in net.features.parameters())
    log.info("decoupled stage 2: %s (Kang et al. 2020, sec. 4) from %s, its %s checkpoint (unit %s)", label, source,
             which, unit)
    log.info("features frozen (%d parameters, eval mode); trained: %d parameters%s", frozen, trained,
             " (none: tau-normalisation)" if method == "tau_norm" else "")
    log.info("settings:\n%s", text.rstrip())
    log.info("data: %s", ", ".join(f"{k}={summary[k]}" for k in ("dataset", "train", "val", "test",
                                                                 "train_class_counts") if k in summary))
    if method != "tau_norm":
        log.info("%s", describe_sampling(tcfg.sampler, data.class_counts, data.class_names, tcfg.length))
