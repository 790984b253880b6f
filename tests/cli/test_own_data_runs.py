"""Your own data through cdb-run: folders of real MNIST digits (the `digits` fixture, helpers.digits) trained
with LeNet-5 at 99:1 and ResNet-32 at imbalance 100, a sweep over a folder through the pack launcher, and the
dry run that prints the counts and writes nothing."""
from __future__ import annotations

import json

import yaml

from helpers import REPO, cdb_run
from helpers.digits import STEPS, VAL


def test_lenet5_run_at_99_to_1(digits, tmp_path):
    res = cdb_run(tmp_path, "dataset=folder", "dataset.path=two", f"dataset.val_per_class={VAL}",
                  "dataset.majority_ratio=0.99", "loss=cdb", *STEPS, data=digits)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = [p.parent for p in tmp_path.rglob("metrics.json")]
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["name"] == "lenet5" and cfg["auto_choices"]["model"] == "lenet5"
    assert cfg["auto_choices"]["trainer"] == "small_folder" and cfg["trainer"]["num_workers"] == 0
    assert cfg["trainer"]["length"] == 2 and cfg["trainer"]["batch_size"] == 64     # yours kept, the rest filled
    assert "chose model=lenet5, trainer=small_folder" in (run / "run.log").read_text()
    data = json.loads((run / "data.json").read_text())
    assert data["channels"] == 1 and data["head"] == "9" and data["train_class_counts"] == [6, 590]
    m = json.loads((run / "metrics.json").read_text())
    keys = set(m["test"])
    assert {"many_accuracy", "many_recall", "few_accuracy", "few_recall", "group_thresholds"} <= keys
    assert not any(k.startswith("medium_") for k in keys)                   # no class between the thresholds
    assert m["test"]["group_thresholds"]["rule"] == "terciles of the training counts"
    assert m["test"]["group_classes"] == {"many": [1], "medium": [], "few": [0]}


def test_resnet32_run_at_imbalance_100(digits, tmp_path):
    res = cdb_run(tmp_path, "dataset=folder", "dataset.path=ten", f"dataset.val_per_class={VAL}",
                  "imbalance=100", "dataset.image_size=32", "model=resnet32", "loss=ce", *STEPS, data=digits)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = [p.parent for p in tmp_path.rglob("metrics.json")]
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["name"] == "resnet32" and cfg["auto_choices"] == {
        "trainer": "small_folder", "because": "32x32 images, 1 channel"}       # your model=, only the trainer chosen
    assert cfg["dataset"]["imbalance"] == 100
    m = json.loads((run / "metrics.json").read_text())
    assert m["train_class_counts"] == [60, 36, 21, 101, 13, 7, 4, 2, 1, 1]
    assert {"many_accuracy", "medium_accuracy", "few_accuracy"} <= set(m["test"])
    assert len(m["test"]["per_class_accuracy"]) == 10 and m["test"]["n"] == 100


def test_a_sweep_over_a_folder_runs_through_the_pack_launcher(digits, tmp_path):
    # trainer=auto leaves trainer.device null until each run is built; the launcher once read it as "None"
    res = cdb_run(tmp_path, "-m", "dataset=folder", "dataset.path=two", f"dataset.val_per_class={VAL}",
                  "dataset.majority_ratio=0.99", "loss=ce,cdb", *STEPS, data=digits)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "sweep: 2 ok, 0 failed" in res.stderr
    losses = [yaml.safe_load((p.parent / "config.yaml").read_text())["loss"]["name"]
              for p in tmp_path.rglob("metrics.json")]
    assert sorted(losses) == ["cdb", "ce"]


def test_dry_run_prints_counts_and_writes_nothing(digits, tmp_path):
    out = tmp_path / "out"                                # where cdb_run puts runs
    res = cdb_run(tmp_path, "dataset=folder", "dataset.path=two", f"dataset.val_per_class={VAL}",
                  "dataset.majority_ratio=0.99", "dry_run=true", data=digits)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines() if line.split()}
    assert rows["4"] == ["6", "10", "20"] and rows["9"] == ["590", "10", "20"]        # train, val, test
    assert rows["total"] == ["596", "20", "40"]
    assert "head class: 9" in res.stdout and "1 channel, 28x28" in res.stdout
    assert "model: lenet5" in res.stdout and "small_folder" in res.stdout
    assert not out.exists() and not (REPO / ".hydra").exists()
    bad = cdb_run(tmp_path, "dataset=folder", "dataset.path=ten", "dataset.majority_ratio=0.99", "dry_run=true",
                  data=digits)
    assert bad.returncode == 2 and bad.stderr.startswith("cdb-run: error: dataset.majority_ratio=0.99")
    assert len(bad.stderr.strip().splitlines()) == 1 and not out.exists()
