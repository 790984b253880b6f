"""Each long-tailed dataset end to end through cdb-run, on tiny datasets in the real on-disk formats
(helpers.datasets): CIFAR-100-LT with ResNet-32, ImageNet-LT with ResNet-10 and its shot groups, EGTEA with a
small 3D-ResNeXt, an image folder with ResNet-10, and a Meta-Weight-Net run that fills its Table 3 row."""
from __future__ import annotations

import csv

import pytest

from helpers import QUICK, REPO, cdb_run, confusion_error, metrics_of, read_log, run_dirs
from helpers.datasets import expected_counts, write_cifar100, write_egtea, write_image_folder, write_imagenet_lt
from helpers.egtea import E2E, E2E_CLIPS, check_egtea_run


def test_headline_command_end_to_end(tmp_path):
    """`cdb-run loss=cdb dataset=cifar_lt imbalance=100` with the real ResNet-32, one epoch on a tiny CIFAR-100."""
    write_cifar100(tmp_path / "data", train_per_class=4, test_per_class=1)
    res = cdb_run(tmp_path, "loss=cdb", "dataset=cifar_lt", "imbalance=100", "dataset.val_per_class=1",
                  "trainer.batch_size=64", *QUICK)
    assert res.returncode == 0, res.stderr[-3000:]
    m = metrics_of(tmp_path)
    assert m["status"] == "complete" and m["test"]["n"] == 100
    assert m["train_class_counts"] == expected_counts(3, 100, 100)      # 3 per class after the hold-out
    run_dir, = run_dirs(tmp_path / "out")
    cfg = (run_dir / "config.yaml").read_text()
    assert "name: resnet32" in cfg and "imbalance: 100" in cfg and "milestones:\n  - 160\n  - 180" in cfg
    assert len(read_log(run_dir)[0]["weights"]) == 100


def test_end_to_end_resnet10_reports_shot_groups(tmp_path):
    write_imagenet_lt(tmp_path / "data", [101, 20, 2], val_per_class=2, test_per_class=2, size=12)
    res = cdb_run(tmp_path, "dataset=imagenet_lt", "dataset.image_size=8", "dataset.resize=10",
                  "trainer.batch_size=32", "trainer.eval_batch_size=8", *QUICK)
    assert res.returncode == 0, res.stderr[-3000:]
    m = metrics_of(tmp_path)
    assert m["test"]["n"] == 6 and m["train_class_counts"] == [101, 20, 2]
    # 101 > 100 training images: many-shot; 20 (in 20..100): medium; 2 < 20: few. Each group is one class
    # with 2 test images, so its accuracy is that class's diagonal count of the saved confusion matrix
    cm = m["checkpoints"]["last"]["test_confusion"]
    n, error, _ = confusion_error(cm)
    t = m["test"]
    assert n == 6 and [sum(row) for row in cm] == [2, 2, 2]
    assert (t["many_accuracy"], t["medium_accuracy"], t["few_accuracy"]) == \
        pytest.approx((50.0 * cm[0][0], 50.0 * cm[1][1], 50.0 * cm[2][2]))
    assert t["top1"] == pytest.approx(100.0 - error) == pytest.approx(t["accuracy"])  # top-5 needs > 5 classes


def test_end_to_end_small_3d_resnext(tmp_path):
    """The egtea pipeline with a scaled-down 3D-ResNeXt (same code, layers [1,1,1,1], 2 groups): the full
    3D-ResNeXt-101 run is the slow test in tests/slow/test_egtea_runs.py."""
    write_egtea(tmp_path / "data", E2E_CLIPS, size=(20, 20))
    res = cdb_run(tmp_path, *E2E, "model.layers=[1,1,1,1]", "model.planes=[32,32,32,32]", "model.cardinality=2",
                  "model.stem=8")
    assert res.returncode == 0, res.stderr[-3000:]
    check_egtea_run(tmp_path)


def test_end_to_end_resnet10(tmp_path):
    write_image_folder(tmp_path / "data" / "mine", {"a": 6, "b": 4}, test_per_class=2, size=12)
    res = cdb_run(tmp_path, "dataset=folder", "dataset.path=mine", "dataset.val_per_class=1", "model=resnet10",
                  "imbalance=3", "dataset.image_size=8", "dataset.resize=10", "dataset.augment=imagenet",
                  "trainer=imagenet_lt_oltr", "trainer.batch_size=4", *QUICK)
    assert res.returncode == 0, res.stderr[-3000:]
    m = metrics_of(tmp_path)
    assert m["train_class_counts"] == [5, 1] and m["class_names"] == ["a", "b"]   # n_max 5: floor(5 / 3^r)


def test_a_mwn_run_fills_the_meta_weight_net_row(tmp_path):
    """A real (tiny) Meta-Weight-Net run on long-tailed CIFAR-100 through cdb-run, then cdb-table table3: the run
    fills Table 3's Meta-Weight Net † row in the imbalance-100 column with its own test accuracy."""
    import subprocess
    import sys

    from helpers import QUICK, cdb_run, metrics_of
    from helpers.datasets import write_cifar100

    write_cifar100(tmp_path / "data", train_per_class=4, test_per_class=1)
    res = cdb_run(tmp_path, "loss=mwn", "dataset=cifar_lt", "imbalance=100", "dataset.val_per_class=1",
                  "trainer.batch_size=64", *QUICK)
    assert res.returncode == 0, res.stderr[-3000:]
    accuracy = metrics_of(tmp_path)["test"]["accuracy"]
    table = subprocess.run([sys.executable, "-c", "from cdb.cli.table import main; main()", "table3", "--runs",
                            str(tmp_path / "out"), "--out", str(tmp_path / "results")], cwd=REPO,
                           capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    with open(tmp_path / "results" / "table3.csv") as f:
        rows = {(r["row"], r["col"]): r for r in csv.DictReader(f)}
    cell = rows[("Meta-Weight Net †", "100")]
    assert cell["n"] == "1" and float(cell["mean"]) == pytest.approx(accuracy, abs=1e-4)
    assert [k for k, r in rows.items() if r["n"] != "0"] == [("Meta-Weight Net †", "100")]
