"""Run directories and figures for the report tests: a finished MNIST run as cdb-table reads it, and a PNG
that records the command that made it.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml


def fake_mnist_run(root, name, tau, ratio, seed, error, label="CDB-CE", weighting="cdb", complete=True,
                   per_class=(90.0, 99.0), lr=0.01, model="lenet_ren", normalize=None, trained_on=None):
    d = root / name / f"seed={seed}"
    d.mkdir(parents=True)
    cfg = {"seed": seed, "model": {"name": model}, "dataset": {"name": "mnist_imbalanced", "majority_ratio": ratio},
           "loss": {"label": label, "base": "ce", "weighting": weighting, "tau": tau},
           "trainer": {"unit": "step", "length": 2000, "lr": lr}}
    if normalize is not None:
        cfg["loss"]["normalize"] = normalize
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    metrics = {"status": "complete" if complete else "running",
               "test": {"error": error, "per_class_accuracy": list(per_class)}}
    if trained_on is not None:
        metrics["trained_on"] = trained_on
    (d / "metrics.json").write_text(json.dumps(metrics))


def is_png_with_command(path: Path, command: str) -> bool:
    from PIL import Image
    with Image.open(path) as img:
        return img.format == "PNG" and img.info.get("Description") == command
