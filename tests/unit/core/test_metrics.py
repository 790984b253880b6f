"""Metrics from hand-computed confusion matrices, and the many/medium/few-shot groups and their thresholds."""
from __future__ import annotations

import pytest
import torch

from cdb.core.metrics import confusion_matrix, shot_groups, summarize

# rows = true class, columns = predicted class
CM = torch.tensor([[3, 1, 0],
                   [2, 2, 0],
                   [0, 1, 1]])


def test_summarize_by_hand():
    m = summarize(CM, {1: 6, 5: 9}, {"majority": [0, 1], "minority": [2]})
    assert m["n"] == 10
    assert m["accuracy"] == pytest.approx(60.0)                     # (3 + 2 + 1) / 10
    assert m["error"] == pytest.approx(40.0)
    assert m["per_class_accuracy"] == pytest.approx([75.0, 50.0, 50.0])
    assert m["macro_recall"] == pytest.approx(100 * (0.75 + 0.5 + 0.5) / 3)
    assert m["macro_precision"] == pytest.approx(100 * (3 / 5 + 2 / 4 + 1 / 1) / 3)
    assert m["top1"] == pytest.approx(60.0) and m["top5"] == pytest.approx(90.0)
    assert m["majority_recall"] == pytest.approx(62.5)              # (0.75 + 0.5) / 2
    assert m["majority_precision"] == pytest.approx(55.0)           # (0.6 + 0.5) / 2
    assert m["majority_accuracy"] == pytest.approx(62.5)            # (3 + 2) / 8
    assert m["minority_recall"] == pytest.approx(50.0)
    assert m["minority_precision"] == pytest.approx(100.0)
    assert m["minority_accuracy"] == pytest.approx(50.0)


def test_confusion_matrix_counts():
    preds = torch.tensor([0, 1, 0, 0, 1, 0, 1, 2, 1, 0])
    targets = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 1])
    assert confusion_matrix(preds, targets, 3).tolist() == CM.tolist()


def test_shot_groups_thresholds():
    # > 100 many, 20..100 medium, < 20 few (OLTR)
    assert shot_groups([101, 100, 20, 19, 0, 1280]) == {"many": [0, 5], "medium": [1, 2], "few": [3, 4]}
    assert shot_groups(torch.tensor([50, 5]), many_above=40, few_below=10) == {"many": [0], "medium": [],
                                                                                "few": [1]}


def test_shot_group_metrics_on_balanced_test():
    # 4 classes, 10 test images each; many = {0}, medium = {1, 2}, few = {3}
    cm = torch.diag(torch.tensor([9, 6, 4, 1]))
    cm[0, 1], cm[1, 0], cm[2, 0], cm[3, 0] = 1, 4, 6, 9
    groups = shot_groups([200, 50, 30, 3])
    m = summarize(cm, None, groups)
    assert m["many_accuracy"] == pytest.approx(90.0)
    assert m["medium_accuracy"] == pytest.approx(50.0)               # (6 + 4) / 20
    assert m["few_accuracy"] == pytest.approx(10.0)
    assert m["accuracy"] == pytest.approx(50.0)                      # 20 / 40


def test_oltr_thresholds_from_100_classes_spanning_them():
    from cdb.core.metrics import shot_thresholds

    spanning = [1280] + [50] * 98 + [5]
    assert shot_thresholds(spanning) == {"many_above": 100, "few_below": 20,
                                         "rule": "OLTR (>= 100 classes spanning both thresholds)"}
    # 100 classes all below 100 images: OLTR's thresholds would make every class medium or few, so terciles
    small = list(range(1, 101))            # 1..100: 1/3 quantile 1 + 99/3 = 34, 2/3 quantile 67
    assert shot_thresholds(small)["few_below"] == 34 and shot_thresholds(small)["many_above"] == 67
