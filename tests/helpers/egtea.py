"""EGTEA end to end: the clips of the tiny dataset and the check of a finished run, shared by the small
3D-ResNeXt run (tests/cli/test_long_tail_runs.py) and the real 3D-ResNeXt-101 (tests/slow/test_egtea_runs.py).
"""
from __future__ import annotations

import pytest

from helpers import QUICK, metrics_of


E2E_CLIPS = {"train": [(f"P0{i % 3 + 1}-R01-Salad-{i}-{i + 9}-F1-F2", v, 10) for i, v in enumerate([1, 1, 2, 3])]
             + [("P21-R01-Salad-1-9-F1-F2", 2, 10)],
             "test": [("P05-R01-Salad-1-9-F1-F2", 1, 10), ("P06-R01-Salad-1-9-F1-F2", 3, 10)]}
E2E = ["dataset=egtea", "model.pretrained=null", "dataset.image_size=16", "dataset.resize=16", "dataset.majority=2",
       "trainer.batch_size=2", "trainer.eval_batch_size=2", *QUICK]


def check_egtea_run(tmp_path):
    """Training counts from E2E_CLIPS by hand, and every reported metric recounted from the saved confusion
    matrix: verbs 1 (x2), 2, 3 train (P21 is validation); majority=2 -> classes 0 and 1 (tie at 1 clip broken
    by label); the two test clips are verbs 1 and 3 (classes 0 and 2)."""
    m = metrics_of(tmp_path)
    t, cm = m["test"], m["checkpoints"]["last"]["test_confusion"]
    assert t["n"] == 2 and m["train_class_counts"] == [2, 1, 1] + [0] * 16
    assert [sum(row) for row in cm] == [1, 0, 1] + [0] * 16
    recall = {c: 100.0 * cm[c][c] for c in (0, 2)}                 # one test clip each
    predicted = [sum(cm[r][c] for r in range(19)) for c in range(19)]
    precision = [100.0 * cm[c][c] / predicted[c] if predicted[c] else 0.0 for c in range(19)]
    assert t["accuracy"] == pytest.approx((recall[0] + recall[2]) / 2)
    assert t["macro_recall"] == pytest.approx((recall[0] + recall[2]) / 2)
    assert t["macro_precision"] == pytest.approx((precision[0] + precision[2]) / 2)
    assert t["majority_recall"] == pytest.approx(recall[0]) and t["minority_recall"] == pytest.approx(recall[2])
    assert t["majority_precision"] == pytest.approx((precision[0] + precision[1]) / 2)
    assert t["minority_precision"] == pytest.approx(sum(precision[2:]) / 17)
    assert t["top5"] in (0.0, 50.0, 100.0) and t["top5"] >= t["accuracy"]
