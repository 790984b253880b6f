"""Every reported metric from one confusion matrix (rows = true class, columns = predicted class)."""
from __future__ import annotations

import math
from typing import Sequence

import torch


def confusion_matrix(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """C x C int64 counts; entry [t, p] counts samples of class t predicted as p."""
    idx = targets.long() * num_classes + preds.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes).cpu()


def class_accuracy(cm: torch.Tensor) -> torch.Tensor:
    """Recall of each class (the paper's A_c); a class with no samples gets 0."""
    support = cm.sum(1).double()
    return torch.where(support > 0, cm.diag().double() / support.clamp_min(1), torch.zeros_like(support))


def summarize(cm: torch.Tensor, topk_correct: dict[int, int] | None = None,
              groups: dict[str, Sequence[int]] | None = None) -> dict:
    """Accuracy, error %, per-class accuracy, macro recall/precision, top-k and per-group metrics."""
    cm = cm.double()
    total = cm.sum()
    support, predicted = cm.sum(1), cm.sum(0)
    recall = class_accuracy(cm)
    precision = torch.where(predicted > 0, cm.diag() / predicted.clamp_min(1), torch.zeros_like(predicted))
    acc = float(cm.diag().sum() / total) if total > 0 else 0.0
    out = {
        "n": int(total),
        "accuracy": 100.0 * acc,
        "error": 100.0 * (1.0 - acc),
        "macro_recall": 100.0 * float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
        "macro_precision": 100.0 * float(precision[support > 0].mean()) if (support > 0).any() else 0.0,
        "per_class_accuracy": [100.0 * float(r) for r in recall],
    }
    for k, correct in (topk_correct or {}).items():
        out[f"top{k}"] = 100.0 * correct / float(total) if total > 0 else 0.0
    for name, classes in (groups or {}).items():
        if name == THRESHOLDS:  # how the groups were drawn: reported as they are
            out["group_thresholds"] = dict(classes)
            out["group_classes"] = {k: list(v) for k, v in groups.items() if k != THRESHOLDS}
            continue
        idx = torch.as_tensor(list(classes), dtype=torch.long)
        if len(idx) == 0:
            continue
        sub_support = support[idx]
        out[f"{name}_recall"] = 100.0 * float(recall[idx][sub_support > 0].mean()) if (sub_support > 0).any() else 0.0
        out[f"{name}_precision"] = 100.0 * float(precision[idx].mean())
        out[f"{name}_accuracy"] = 100.0 * float(cm.diag()[idx].sum() / sub_support.sum().clamp_min(1))
    return out


SHOT_THRESHOLDS = (100, 20)  # Liu et al. 2019 (OLTR): many > 100 training images, few < 20, medium between


def shot_groups(train_counts, many_above: int = SHOT_THRESHOLDS[0],
                few_below: int = SHOT_THRESHOLDS[1]) -> dict[str, list[int]]:
    """Classes by training-set size: many (> many_above), medium (few_below..many_above), few (< few_below).

    The standard long-tail report (OLTR's ImageNet-LT protocol); summarize() turns
    these groups into many_/medium_/few_ accuracy, recall and precision.
    """
    counts = [int(n) for n in train_counts]
    return {
        "many": [c for c, n in enumerate(counts) if n > many_above],
        "medium": [c for c, n in enumerate(counts) if few_below <= n <= many_above],
        "few": [c for c, n in enumerate(counts) if n < few_below],
    }


def shot_thresholds_text(many_above: int = SHOT_THRESHOLDS[0], few_below: int = SHOT_THRESHOLDS[1]) -> str:
    return (f"many: > {many_above} training images, medium: {few_below}-{many_above}, "
            f"few: < {few_below}")


THRESHOLDS = "thresholds"  # key of a groups dict that records how the groups were drawn (summarize reports it)


def shot_thresholds(train_counts, many_above="auto", few_below="auto") -> dict:
    """{many_above, few_below, rule}: the given numbers, or for "auto" a rule that fits any class count.

    auto: OLTR's > 100 / < 20 when there are at least 100 classes and the counts reach past both (ImageNet-LT
    style sets, comparable with published numbers); otherwise the terciles of the training counts
    (linear-interpolated 1/3 and 2/3 quantiles), so a 99:1 pair is one many-shot and one few-shot class.
    Thresholds are whole numbers that keep the strict inequalities' groups: many > floor(q2/3), few < ceil(q1/3).
    """
    counts = torch.as_tensor([int(n) for n in train_counts], dtype=torch.float64)
    auto = many_above == "auto", few_below == "auto"
    oltr = len(counts) >= 100 and counts.max() > SHOT_THRESHOLDS[0] and counts.min() < SHOT_THRESHOLDS[1]
    if oltr:
        m, f, rule = *SHOT_THRESHOLDS, "OLTR (>= 100 classes spanning both thresholds)"
    else:
        q = torch.quantile(counts, torch.tensor([1 / 3, 2 / 3], dtype=torch.float64))
        m, f, rule = math.floor(float(q[1]) + 1e-9), math.ceil(float(q[0]) - 1e-9), "terciles of the training counts"
    if not any(auto):
        rule = "given"
    elif not all(auto):
        rule = f"given, the other from the {rule}"
    return {"many_above": m if auto[0] else many_above, "few_below": f if auto[1] else few_below, "rule": rule}


def shot_report(train_counts, many_above="auto", few_below="auto") -> tuple[dict, str]:
    """(groups with their thresholds under THRESHOLDS, one line that says how they were drawn)."""
    t = shot_thresholds(train_counts, many_above, few_below)
    groups = {**shot_groups(train_counts, t["many_above"], t["few_below"]), THRESHOLDS: t}
    return groups, f"{shot_thresholds_text(t['many_above'], t['few_below'])} ({t['rule']})"


def result_line(metrics: dict) -> str:
    """One line for a finished run's metrics.json: the selected checkpoint's test error, accuracy, per class."""
    t = metrics["test"]
    per_class = ", ".join(f"{a:.1f}" for a in t["per_class_accuracy"])
    return (f"test error {t['error']:.2f}% (accuracy {t['accuracy']:.2f}%, per class {per_class}) "
            f"[{metrics['selected']} checkpoint]")
