"""Helpers shared by the test suite (fixtures and hooks live in tests/conftest.py, these are plain functions).

REPO is the checkout and DATA the suite's data files (tests/data); cdb_run runs the CLI the way a user does and
multirun a whole sweep; compose composes a config in-process; read_log, run_dirs and metrics_of read a run's files;
confusion_error recounts a run's metrics from its confusion matrix; mnist_root finds real MNIST (CDB_DATA_ROOT).
Test files import them with `from helpers import ...` (pyproject.toml puts tests/ on the path); the submodules
hold the helpers of one area (datasets: tiny data sets in the real on-disk formats; digits: folders of real
MNIST digits; ddp, egtea, faults, report, training).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from helpers.forked import run_module

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"

# LeNet-5's MNIST recipe (the paper's numbers read as passes, protocol P1 of docs/protocol.md): tests whose
# preconditions were measured on its dynamics or that read its layer names (e.g. a best checkpoint that differs
# from the last, `classifier.5`) name it.
LENET5 = ["protocol=p1"]
# A few optimiser steps on MNIST 4/9 (the default model): two validations (CDB updates), one thread.
FAST = ["trainer.unit=step", "trainer.length=6", "trainer.eval_every=3", "trainer.lr=0.01",
        "trainer.progress=false", "trainer.milestones=[]", "threads=1"]
# One unit of a long-tailed dataset on CPU, for the tiny on-disk datasets of helpers.datasets.
QUICK = ["trainer.length=1", "trainer.device=cpu", "trainer.progress=false", "trainer.num_workers=0",
         "trainer.lr_warmup=0", "threads=1"]


def cdb_run(tmp_path: Path, *args: str, data: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m cdb.cli ARGS` from this checkout, as a user runs it: runs go to tmp_path/out, data comes from
    `data` (default tmp_path/data), one OpenMP thread, no Hydra tracebacks. A process of its own, forked from a
    server that has imported torch already (helpers.forked)."""
    env = {**os.environ, "CDB_OUTPUT_ROOT": str(tmp_path / "out"),
           "CDB_DATA_ROOT": str(tmp_path / "data" if data is None else data),
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    return run_module("cdb.cli", list(args), env, REPO, timeout)


def multirun(tmp_path: Path, data: Path, *overrides: str) -> dict[str, Path]:
    """One `cdb-run -m OVERRIDES` sweep that must succeed; returns {loss name: run directory}."""
    import yaml

    proc = cdb_run(tmp_path, "-m", "trainer.progress=false", *overrides, data=data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "error" not in proc.stderr.lower(), proc.stderr[-3000:]
    return {yaml.safe_load((d / "config.yaml").read_text())["loss"]["name"]: d for d in run_dirs(tmp_path / "out")}


def compose(overrides: list[str] | tuple[str, ...] = (), hydra: bool = False):
    """The config `cdb-run OVERRIDES` would run (hydra=True keeps the `hydra` node, e.g. for sweeper params)."""
    from hydra import compose as hydra_compose, initialize_config_dir

    from cdb.config import config_dir

    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=hydra)


def read_log(run_dir: Path) -> list[dict]:
    """The rows of <run_dir>/log.jsonl, one per validation."""
    return [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines() if line.strip()]


def run_dirs(root: Path) -> list[Path]:
    """Every run directory (one holding metrics.json) under root."""
    return sorted(p.parent for p in Path(root).rglob("metrics.json"))


def metrics_of(tmp_path: Path) -> dict:
    """metrics.json of the one run under tmp_path/out (where cdb_run puts runs)."""
    found = run_dirs(tmp_path / "out")
    assert len(found) == 1, found
    return json.loads((found[0] / "metrics.json").read_text())


def confusion_error(confusion: list[list[int]]) -> tuple[int, float, list[float]]:
    """(n, error %, per-class accuracy %) counted from a confusion matrix (rows: true class), to check the
    metrics a run reports against the counts it saved."""
    n = sum(map(sum, confusion))
    correct = sum(confusion[c][c] for c in range(len(confusion)))
    return n, 100.0 * (n - correct) / n, [100.0 * row[c] / max(sum(row), 1) for c, row in enumerate(confusion)]


def mnist_root() -> Path | None:
    root = os.environ.get("CDB_DATA_ROOT")
    candidates = [Path(root)] if root else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        c = c if c.is_absolute() else (REPO / c)
        if (c / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return c.resolve()
    return None
