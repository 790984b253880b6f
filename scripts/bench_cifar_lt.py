"""Whole CIFAR-100-LT runs timed (scripts/bench.py --cifar-lt-run / --cifar-lt-sweep; for a GPU): one ResNet-32 run,
and Table 4's seven tau at one imbalance trained as one pack against one run alone.

Data: real CIFAR-100-LT when the files are under CDB_DATA_ROOT (cdb.data's cifar_lt, the paper's split), else random
uint8 images with its class counts (the time of a step does not depend on the pixels)."""
from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import torch

CIFAR_MEAN, CIFAR_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
TABLE4_TAUS = (0.0, 0.5, 1.0, 1.5, 2.0, 5.0, "dynamic")  # configs/experiment/table4.yaml


def synthetic_cifar_lt(imbalance=100.0, n_max=450, val_per_class=50, test_per_class=100, seed=0):
    """Random uint8 images in the shape of CIFAR-100-LT: the protocol's per-class training counts
    (cdb.data.longtail, n_c = floor(n_max * mu^c)), 50 validation and 100 test images per class."""
    from cdb.data.base import DatasetSplits, TensorSplit
    from cdb.data.longtail import longtail_counts

    g = torch.Generator().manual_seed(seed)

    def split(counts):
        y = torch.repeat_interleave(torch.arange(100), torch.tensor(counts))
        return TensorSplit(torch.randint(0, 256, (len(y), 3, 32, 32), dtype=torch.uint8, generator=g), y)

    return DatasetSplits("synthetic_cifar100_lt", split(longtail_counts(n_max, 100, imbalance)),
                         split([val_per_class] * 100), split([test_per_class] * 100), 100,
                         [str(i) for i in range(100)], (3, 32, 32), CIFAR_MEAN, CIFAR_STD, augment="crop_flip")


def cifar_lt_data(imbalance: float = 100.0):
    """Real CIFAR-100-LT (the paper's split, seed 0) if its files are under CDB_DATA_ROOT, else synthetic."""
    from cdb.core.errors import CdbError
    from cdb.data import build_dataset

    try:
        return build_dataset("cifar_lt", root=os.environ.get("CDB_DATA_ROOT", "data"), seed=0, classes=100,
                             imbalance=imbalance, val_per_class=50, split="random")
    except CdbError:
        return synthetic_cifar_lt(imbalance)


def _trainer_cfg(epochs: int, device: str, speed: dict):
    from omegaconf import OmegaConf

    from cdb.config import load_preset
    from cdb.train.config import TrainerConfig

    tcfg = OmegaConf.to_container(load_preset("trainer", "cifar_lt"), resolve=True)  # trainer/base under it
    scale = epochs / tcfg["length"]
    tcfg.update(length=epochs, milestones=[max(1, round(m * scale)) for m in tcfg["milestones"]],
                lr_warmup=min(tcfg["lr_warmup"], epochs), device=device, progress=False, **speed)
    return TrainerConfig.from_dict(tcfg)


def _state(data, tau, epochs, device, out_dir, speed, seed=0):
    """One run as `cdb-run dataset=cifar_lt loss=cdb loss.tau=TAU` makes it (ResNet-32, trainer/cifar_lt.yaml)."""
    from cdb.losses import build_criterion
    from cdb.models import build_model
    from cdb.train.run import RunState

    torch.manual_seed(seed)
    model = build_model("resnet32", 100, (3, 32, 32))
    crit = build_criterion({"base": "ce", "weighting": "cdb", "tau": tau}, 100, data.class_counts)
    return RunState(model, data, crit, _trainer_cfg(epochs, device, speed), out_dir, seed=seed)


def cifar_lt_run(epochs: int, device: str, out_dir: str | Path, data=None, **speed) -> dict:
    """A whole CIFAR-100-LT run as `cdb-run dataset=cifar_lt imbalance=100 loss=cdb` makes it (ResNet-32,
    trainer/cifar_lt.yaml, milestones scaled to `epochs`, validation and CDB update every epoch, checkpoints,
    the final test) on synthetic tensors; returns its timings."""
    from cdb.train.loop import train_alone

    data = data or synthetic_cifar_lt()
    trainer = _state(data, "dynamic", epochs, device, out_dir, speed)
    t = time.perf_counter()
    metrics = train_alone(trainer)
    wall = time.perf_counter() - t
    return {"epochs": epochs, "wall_s": wall, "train_images": len(data.train), "per_epoch_s": wall / epochs,
            "train_wall_time_s": metrics["train_wall_time_s"], "test_error": metrics["test"]["error"],
            "device": str(trainer.device), "speed": speed}


class _Limit:
    """Stops the training in `with _Limit(s):` after s seconds (as Ctrl-C does: cdb's loop raises Interrupted and
    keeps every run's last checkpoint); s <= 0: no limit."""

    def __init__(self, seconds: float):
        self.seconds, self.hit = seconds, False

    def _alarm(self, *_):
        self.hit = True
        raise KeyboardInterrupt

    def __enter__(self):
        if self.seconds > 0:
            self.old = signal.signal(signal.SIGALRM, self._alarm)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.seconds > 0:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)
        return False


def _timed(states, limit_s: float) -> dict:
    """Train the runs as one pack (one run: alone), stopped after limit_s; the epochs each finished (log.jsonl)
    and the time per epoch after the first (no warm-up: cuDNN's search, first allocations)."""
    import json

    from cdb.core.errors import Interrupted
    from cdb.train.loop import fit

    t = time.perf_counter()
    with _Limit(limit_s) as lim:
        try:
            fit(states)
        except (Interrupted, KeyboardInterrupt):  # Ctrl-C's own, or the limit's
            if not lim.hit:
                raise
    wall = time.perf_counter() - t
    log = Path(states[0].run_dir) / "log.jsonl"
    rows = [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.exists() else []
    n, times = len(rows), [r["time_s"] for r in rows]
    steady = (times[-1] - times[0]) / (n - 1) if n > 1 else (times[0] if times else None)
    return {"runs": len(states), "epochs_done": n, "stopped_at_limit": lim.hit, "wall_s": wall,
            "first_epoch_s": times[0] if times else None, "per_epoch_s": steady}


def cifar_lt_sweep(epochs: int, device: str, limit_s: float = 0, imbalance: float = 100.0, taus=TABLE4_TAUS,
                   data=None, **speed) -> dict:
    """Table 4's tau at one imbalance (7 runs, `epochs` epochs of the paper's schedule) as one pack, then one run
    alone (tau dynamic), each stopped after limit_s if set; per-run speed-up = runs x (alone's time per epoch) /
    (the pack's). A run stopped early is extrapolated to `epochs` (first epoch + the rest at the steady rate)."""
    data = data or cifar_lt_data(imbalance)
    out = {"epochs": epochs, "imbalance": imbalance, "taus": [str(x) for x in taus], "train_images": len(data.train),
           "data": data.name, "limit_s": limit_s, "speed": speed}
    with tempfile.TemporaryDirectory() as tmp:
        out["pack"] = _timed([_state(data, tau, epochs, device, Path(tmp) / f"tau={tau}", speed) for tau in taus],
                             limit_s)
        out["alone"] = _timed([_state(data, "dynamic", epochs, device, Path(tmp) / "alone", speed)], limit_s)
    for r in (out["pack"], out["alone"]):  # None: no epoch finished within the limit
        r["whole_s"] = r["wall_s"] if not r["stopped_at_limit"] else \
            None if r["per_epoch_s"] is None else r["first_epoch_s"] + (epochs - 1) * r["per_epoch_s"]
    a, p = out["alone"]["per_epoch_s"], out["pack"]["per_epoch_s"]
    out["per_run_speedup"] = len(taus) * a / p if a and p else None
    out["device"] = str(torch.device(device))
    return out


def _s(x, fmt=".2f", unit=""):
    return "no epoch within the limit" if x is None else f"{x:{fmt}}{unit}"


def sweep_markdown(r: dict, command: str, machine: str) -> str:
    p, a, k = r["pack"], r["alone"], len(r["taus"])
    est = lambda x: " (extrapolated from %d epochs)" % x["epochs_done"] if x["stopped_at_limit"] else ""  # noqa: E731
    seq = lambda key: None if a[key] is None else k * a[key]  # noqa: E731
    return "\n".join([
        f"# Table 4's tau sweep on CIFAR-100-LT (imbalance {r['imbalance']:g}): a pack of {k} against one run alone",
        "", f"Command: `{command}` ({r['date']}). Device: {machine}; torch {torch.__version__}. Data: {r['data']} "
        f"({r['train_images']} training images). Settings {r['speed']}. Each {r['epochs']} epochs of the paper's "
        "schedule (validation, CDB update and checkpoint every epoch)"
        + (f"; each stopped after {r['limit_s']:g} s at most." if r["limit_s"] else "."), "",
        "| | runs | epochs timed | s per epoch (after the first, if more than one) | whole schedule |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| pack (tau {', '.join(r['taus'])}) | {k} | {p['epochs_done']} | {_s(p['per_epoch_s'])} | "
        f"{_s(p['whole_s'], '.0f', ' s')}{est(p)} |",
        f"| one run alone (tau dynamic) | 1 | {a['epochs_done']} | {_s(a['per_epoch_s'])} | "
        f"{_s(a['whole_s'], '.0f', ' s')}{est(a)} |",
        f"| {k} runs one after another ({k} x alone) | {k} | | {_s(seq('per_epoch_s'))} | "
        f"{_s(seq('whole_s'), '.0f', ' s')} |",
        "", f"Per-run speed-up of the pack: **{_s(r['per_run_speedup'], '.2f', 'x')}** ({k} x alone's time per epoch "
        "after the first / the pack's), measured in this run.", ""])
