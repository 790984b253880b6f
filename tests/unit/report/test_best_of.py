"""`cdb-table compare --best-of KEY`: each method's best setting by balanced validation accuracy (mean over its
seeds), whatever the test split says; a failed (diverged) setting is never chosen; equal objectives go to the earlier
trial, as Optuna's best trial does. Built on run directories written here, with objectives chosen by hand."""
from __future__ import annotations

import json

import pytest
import yaml

from cdb.core.errors import CdbError
from cdb.report.tables import make_table


def _run(root, method, setting, seed, val, test_error, job=None, diverged=False):
    """A finished run: validation class accuracies `val` (its objective is their mean), test error `test_error`."""
    d = root / f"loss={method},{setting}" / f"seed={seed}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "loss": {"label": method.upper()},
                                                   "dataset": {"name": "folder"}}))
    if diverged:
        metrics = {"status": "diverged", "message": "non-finite"}
    else:
        test = {"error": test_error, "macro_recall": 100 - test_error, "per_class_accuracy": [50.0, 50.0]}
        best = {"val": {"macro_recall": sum(val) / len(val), "per_class_accuracy": val}, "test": test}
        metrics = {"status": "complete", "selected": "best", "test": test, "class_names": ["a", "b"],
                   "checkpoints": {"best": best, "last": {"val": {"macro_recall": 0.0}, "test": test}}}
    (d / "metrics.json").write_text(json.dumps(metrics))
    if job is not None:
        (d / ".hydra").mkdir()
        (d / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": job}}}))
    return d


def _chosen(root, key="loss.label"):
    table = make_table("compare", root, best_of=key)
    return sorted(table.spec.rows), [n for n in table.spec.notes if "best of" in n or "left out" in n]


def test_each_method_keeps_its_best_setting_on_validation_whatever_the_test_split_says(tmp_path):
    # ce: lr=0.1 (val 80, 90 -> 85, the worst test error) beats lr=0.01 (val 84) and lr=1 (diverged)
    _run(tmp_path, "ce", "lr=0.1", 0, [70.0, 90.0], test_error=40.0)
    _run(tmp_path, "ce", "lr=0.1", 1, [80.0, 100.0], test_error=40.0)
    _run(tmp_path, "ce", "lr=0.01", 0, [80.0, 88.0], test_error=1.0)
    _run(tmp_path, "ce", "lr=1", 0, [], test_error=0.0, diverged=True)
    # cdb: tau=2 (val 95) beats tau=1 (val 60, test error 0)
    _run(tmp_path, "cdb", "tau=2", 0, [94.0, 96.0], test_error=30.0)
    _run(tmp_path, "cdb", "tau=1", 0, [20.0, 100.0], test_error=0.0)
    rows, notes = _chosen(tmp_path)
    assert rows == ["loss=cdb,tau=2", "loss=ce,lr=0.1"]
    assert notes == ["loss.label=CDB: best of 2 settings by balanced validation accuracy (95.00 %): loss=cdb,tau=2",
                     "loss.label=CE: best of 3 settings (1 failed) by balanced validation accuracy (85.00 %): "
                     "loss=ce,lr=0.1"]
    # CE had 3 settings, CDB-CE 2: the table says the budgets were not equal
    table = make_table("compare", tmp_path, best_of="loss.label")
    assert "unequal budgets: loss.label=CDB 2 settings, loss.label=CE 3 settings" in table.spec.notes
    assert "40.00 ± 0.00 (2)" in table.text("md")  # the chosen CE setting's own (bad) test error is reported


def test_a_method_whose_every_setting_failed_is_left_out_with_a_note(tmp_path):
    _run(tmp_path, "ce", "lr=1", 0, [], test_error=0.0, diverged=True)
    _run(tmp_path, "cdb", "tau=2", 0, [94.0, 96.0], test_error=30.0)
    rows, notes = _chosen(tmp_path)
    assert rows == ["loss=cdb,tau=2"]
    assert "loss.label=CE: no setting of 1 (1 failed) has a balanced validation accuracy: left out" in notes


def test_equal_objectives_go_to_the_earlier_trial(tmp_path):
    """Optuna's best trial is the first of equal values: job 0 here, although its name sorts last."""
    _run(tmp_path, "ce", "lr=0.9", 0, [50.0, 50.0], test_error=5.0, job=0)
    _run(tmp_path, "ce", "lr=0.1", 0, [50.0, 50.0], test_error=5.0, job=1)
    assert _chosen(tmp_path)[0] == ["loss=ce,lr=0.9"]


@pytest.mark.parametrize("key, table", [("loss.nothing", "compare"), ("loss.label", "table1")])
def test_best_of_refuses_an_unknown_key_and_a_paper_table(tmp_path, key, table):
    _run(tmp_path, "ce", "lr=0.1", 0, [70.0, 90.0], test_error=40.0)
    with pytest.raises(CdbError, match="best-of"):
        make_table(table, tmp_path, best_of=key)
