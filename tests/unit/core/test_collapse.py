"""One definition of a collapsed run (cdb.core.metrics), by hand: some class below 1 % accuracy on the validation or
the test split of the reported checkpoint. metrics.json, the final line, run.log and the tables all use it.
"""
from __future__ import annotations

import pytest
import torch

from cdb.core import metrics as M
from cdb.report.runs import RunRecord, collapsed
from cdb.report.spec import TableSpec, Table, aggregate, contributions


def test_classes_below_one_percent_by_name():
    acc = [0.5, 99.0, 0.99, 1.0, 0.0]
    assert M.collapsed_classes(acc, ["a", "b", "c", "d", "e"]) == ["a", "c", "e"]   # 1.0 is not below 1 %
    assert M.collapsed_classes(acc) == ["0", "2", "4"]                               # no names: the indices
    assert M.collapsed_classes([0.0]) == []                                           # one class: nothing to lose
    assert M.collapsed_classes([50.0, 60.0], ["4", "9"]) == []


def test_ten_classes_one_lost_is_collapsed():
    """The case where "ended predicting (almost) one class" and "some class below 1 %" disagreed: 9 of 10 classes
    learned, one at 0 %. The one definition calls it collapsed and names that class."""
    acc = [90.0] * 10
    acc[7] = 0.0
    assert M.collapsed_classes(acc, [f"d{c}" for c in range(10)]) == ["d7"]


def test_summarize_lists_collapsed_classes_and_skips_empty_ones():
    # class "x" has 4 samples, all wrong (0 %); "y" 2 of 4 (50 %); "z" has no sample in this split
    cm = torch.tensor([[0, 4, 0], [2, 2, 0], [0, 0, 0]])
    out = M.summarize(cm, class_names=["x", "y", "z"])
    assert out["collapsed"] == ["x"]                    # z has no sample: not a class the model lost
    assert out["per_class_accuracy"] == pytest.approx([0.0, 50.0, 0.0])
    assert M.summarize(torch.tensor([[3, 1], [1, 3]]), class_names=["4", "9"])["collapsed"] == []


def _metrics(test_acc, val_acc, selected="last", names=("4", "9")):
    return {"status": "complete", "selected": selected, "class_names": list(names),
            "test": {"error": 50.0, "accuracy": 50.0, "per_class_accuracy": list(test_acc)},
            "checkpoints": {selected: {"val": {"per_class_accuracy": list(val_acc)},
                                       "test": {"per_class_accuracy": list(test_acc)}}}}


def test_the_run_collapses_on_validation_or_test_of_the_reported_checkpoint():
    assert M.run_collapsed(_metrics([0.0, 100.0], [0.0, 100.0])) == {"4": ["validation", "test"]}
    assert M.run_collapsed(_metrics([40.0, 100.0], [0.5, 100.0])) == {"4": ["validation"]}
    assert M.run_collapsed(_metrics([40.0, 0.0], [80.0, 99.0], selected="best")) == {"9": ["test"]}
    assert M.run_collapsed(_metrics([40.0, 60.0], [80.0, 99.0])) == {}
    # a metrics.json written before the field existed, test values only: the same rule on what it has
    assert M.run_collapsed({"test": {"per_class_accuracy": [0.0, 100.0]}}) == {"0": ["test"]}
    # the recorded field, when there is one, is the answer (it was computed with the confusion's supports)
    recorded = {**_metrics([0.0, 100.0], [0.0, 100.0]), "collapsed": {"9": ["test"]}}
    assert M.run_collapsed(recorded) == {"9": ["test"]}


def test_another_checkpoint_by_the_same_rule():
    m = _metrics([60.0, 100.0], [70.0, 100.0], selected="best")
    m["checkpoints"]["last"] = {"val": {"per_class_accuracy": [0.0, 100.0]}, "test": {"per_class_accuracy": [3.0, 99.0]}}
    assert M.run_collapsed(m) == {}                                   # the reported (best) checkpoint learned both
    assert M.run_collapsed(m, "last") == {"4": ["validation"]}        # the scripts' question: the last checkpoint


def test_result_line_names_the_classes():
    m = _metrics([0.0, 100.0], [0.0, 100.0])
    assert M.result_line(m) == "test error 50.00% (accuracy 50.00%, per class 4: 0.0, 9: 100.0) [last checkpoint]"


def test_collapse_line_says_the_word_names_the_class_and_where_to_look():
    line = M.collapse_line(_metrics([0.0, 100.0], [0.0, 100.0]))
    assert line.startswith("collapsed: class 4 below 1 % accuracy (validation and test) [last checkpoint]")
    assert 'docs/own-data.md, "When a run collapses"' in line
    assert "loss=ifw" in line and "trainer.select=best" in line and "trainer.lr" in line
    names = [f"d{c}" for c in range(3)]
    two = M.collapse_line(_metrics([0.0, 0.0, 90.0], [0.0, 50.0, 90.0], names=names))
    assert two.startswith("collapsed: classes d0 (validation and test), d1 (test) below 1 % accuracy")
    three = M.collapse_line(_metrics([0.0, 0.0, 90.0], [0.0, 0.0, 90.0], names=names))
    assert three.startswith("collapsed: classes d0, d1 below 1 % accuracy (validation and test) [last checkpoint]")
    assert M.collapse_line(_metrics([40.0, 60.0], [80.0, 99.0])) is None


def test_tables_count_a_run_by_the_same_rule_and_say_it(tmp_path):
    learned = RunRecord(tmp_path / "a", {"seed": 0}, _metrics([80.0, 90.0], [85.0, 95.0]))
    lost_on_val = RunRecord(tmp_path / "b", {"seed": 1}, _metrics([80.0, 90.0], [0.0, 95.0]))
    assert (collapsed(learned), collapsed(lost_on_val)) == (False, True)
    spec = TableSpec(name="t", title="t", rows=["r"], cols=["c"],
                     cells=lambda run: [("r", "c", run.metrics["test"]["error"])])
    contrib = contributions(spec, [learned, lost_on_val])
    table = Table(spec, contrib, aggregate(spec, contrib), runs_dir="x")
    md = table.markdown()
    assert "(2, 1 collapsed)" in md
    assert M.COLLAPSE_RULE in md and "predicting (almost) one class" not in md
    assert M.COLLAPSE_RULE == "some class below 1 % accuracy on the validation or the test split"
