"""Every reported metric from one confusion matrix (rows = true class, columns = predicted class), the lines a
finished run ends with, and the one definition of a collapsed run (COLLAPSE_RULE) that every report uses."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Sequence

import torch

from cdb.core.errors import check, is_count


def confusion_matrix(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """C x C int64 counts; entry [t, p] counts samples of class t predicted as p."""
    idx = targets.long() * num_classes + preds.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes).cpu()


def class_accuracy(cm: torch.Tensor) -> torch.Tensor:
    """Recall of each class (the paper's A_c); a class with no samples gets 0."""
    support = cm.sum(1).double()
    return torch.where(support > 0, cm.diag().double() / support.clamp_min(1), torch.zeros_like(support))


def summarize(cm: torch.Tensor, topk_correct: dict[int, int] | None = None,
              groups: dict[str, Sequence[int]] | None = None, class_names: Sequence[str] | None = None) -> dict:
    """Accuracy, error %, per-class accuracy, macro recall/precision, top-k and per-group metrics, and `collapsed`:
    the classes (by name) of this split below COLLAPSE_BELOW % accuracy (a class with no sample here is left out)."""
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
    out["collapsed"] = collapsed_classes(out["per_class_accuracy"], class_names, support.tolist())
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
    for key, value in (("many_above", many_above), ("few_below", few_below)):
        check(is_count(value) and value >= 0, f"dataset.{key}", value, "a whole number of training images")
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
    for key, value in (("many_above", many_above), ("few_below", few_below)):
        check(value == "auto" or (is_count(value) and value >= 0), f"dataset.{key}", value,
              "auto or a whole number of training images")
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


# ---- collapse: the one definition (metrics.json, the final line, run.log, the tables, the scripts) -------------

COLLAPSE_BELOW = 1.0  # % accuracy: a class below it is lost
COLLAPSE_RULE = f"some class below {COLLAPSE_BELOW:g} % accuracy on the validation or the test split"
COLLAPSE_SECTION = "When a run collapses"  # of docs/own-data.md
SPLIT_WORDS = {"val": "validation", "test": "test"}


def docs_path(name: str) -> str:
    """Where docs/<name> is in this install: the package cdb_docs (the wheel ships docs/ under that name; an editable
    install maps it to the checkout's docs/), else the checkout's docs/ beside cdb/, else `docs/<name>`."""
    try:
        spec = importlib.util.find_spec("cdb_docs")
    except (ImportError, ValueError):
        spec = None
    places = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    places.append(Path(__file__).resolve().parents[2] / "docs")
    for place in places:
        if (place / name).is_file():
            return str(place / name)
    return f"docs/{name}"


def collapsed_classes(per_class_accuracy, class_names: Sequence[str] | None = None,
                      support: Sequence[float] | None = None) -> list[str]:
    """The classes (names, else indices as text) of one split below COLLAPSE_BELOW % accuracy; a class without a
    sample in the split (support 0, where known) is not counted, nor is anything of a one-class problem."""
    acc = list(per_class_accuracy or [])
    if len(acc) < 2:
        return []
    names = list(class_names) if class_names and len(class_names) == len(acc) else [str(c) for c in range(len(acc))]
    return [str(names[c]) for c, a in enumerate(acc)
            if a < COLLAPSE_BELOW and (support is None or support[c] > 0)]


def is_collapsed(per_class_accuracy) -> bool:
    """Whether one split's per-class accuracies have a class below COLLAPSE_BELOW % (collapsed_classes)."""
    return bool(collapsed_classes(per_class_accuracy))


def _split_collapsed(summary: dict | None, names) -> list[str]:
    if not isinstance(summary, dict):
        return []
    if "collapsed" in summary:  # computed with the split's supports when the run finished
        return list(summary["collapsed"])
    return collapsed_classes(summary.get("per_class_accuracy"), names)


def run_collapsed(metrics: dict, checkpoint: str | None = None) -> dict[str, list[str]]:
    """{class name: ["validation", "test"] or one of them} for each class of the reported checkpoint
    (trainer.select; or `checkpoint`, "last" or "best") below COLLAPSE_BELOW % accuracy on that split; {} when the
    run did not collapse.

    metrics.json records this for the reported checkpoint as `collapsed`; a metrics.json from before that field is
    judged on what it has (the reported test values, and that checkpoint's validation values when present)."""
    selected = metrics.get("selected", "last")
    if checkpoint in (None, selected) and isinstance(metrics.get("collapsed"), dict):
        return {str(k): list(v) for k, v in metrics["collapsed"].items()}
    names = metrics.get("class_names")
    sel = (metrics.get("checkpoints") or {}).get(checkpoint or selected) or {}
    test = metrics.get("test") if checkpoint in (None, selected) else sel.get("test")
    splits = {"val": _split_collapsed(sel.get("val"), names), "test": _split_collapsed(test, names)}
    size = len((metrics.get("test") or {}).get("per_class_accuracy") or [])
    order = [str(n) for n in names] if names else [str(c) for c in range(size)]
    found = {c for cs in splits.values() for c in cs}
    lost = [c for c in order if c in found] + sorted(found - set(order))  # class order, as the tables list them
    return {c: [SPLIT_WORDS[s] for s in ("val", "test") if c in splits[s]] for c in lost}


def collapse_line(metrics: dict) -> str | None:
    """The line a collapsed run ends with (None when it did not collapse): the word, the classes, and what to try."""
    lost = run_collapsed(metrics)
    if not lost:
        return None
    where = {c: " and ".join(s) for c, s in lost.items()}
    below = f"below {COLLAPSE_BELOW:g} % accuracy"
    if len(set(where.values())) == 1:  # every class lost on the same split(s)
        w = next(iter(where.values()))
        which = f"{'class' if len(lost) == 1 else 'classes'} {', '.join(lost)} {below} ({w})"
    else:
        which = f"classes {', '.join(f'{c} ({w})' for c, w in where.items())} {below}"
    return (f"collapsed: {which} [{metrics.get('selected', 'last')} checkpoint]; what to try: "
            f"{docs_path('own-data.md')}, \"{COLLAPSE_SECTION}\" "
            "(e.g. loss=ifw, trainer.select=best, a lower trainer.lr)")


def result_line(metrics: dict) -> str:
    """One line for a finished run's metrics.json: the selected checkpoint's test error, accuracy, per class
    (by class name)."""
    t = metrics["test"]
    acc = t["per_class_accuracy"]
    names = metrics.get("class_names")
    names = names if names and len(names) == len(acc) else [str(c) for c in range(len(acc))]
    per_class = ", ".join(f"{n}: {a:.1f}" for n, a in zip(names, acc))
    return (f"test error {t['error']:.2f}% (accuracy {t['accuracy']:.2f}%, per class {per_class}) "
            f"[{metrics['selected']} checkpoint]")


def outcome_lines(metrics: dict) -> list[str]:
    """What a finished run ends with: its result line, then the collapse line if it collapsed."""
    line = collapse_line(metrics)
    return [result_line(metrics)] + ([line] if line else [])


def validation_objective(metrics: dict) -> float:
    """The objective of a tuned search (docs/tuning.md): the balanced validation accuracy in % (the mean of the
    class-wise validation accuracies, `macro_recall`) of the checkpoint the run reports (trainer.select), read from
    its metrics.json. No test value enters it. NaN for a run without one (diverged, or unfinished)."""
    if metrics.get("status") != "complete":
        return math.nan
    checkpoints = metrics.get("checkpoints") or {}
    chosen = checkpoints.get(metrics.get("selected", "last")) or checkpoints.get("last") or {}
    value = (chosen.get("val") or {}).get("macro_recall")
    return math.nan if value is None else float(value)
