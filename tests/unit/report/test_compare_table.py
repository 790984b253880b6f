"""cdb-table compare: one row per setting of a sweep with hand-computed means, many/medium/few-shot columns instead
of classes, row labels without the overrides every row shares, and a diverged run counted in its row."""
import csv
import io
import json

import pytest
import yaml

from cdb.report.compare import short_names
from cdb.core.errors import CdbError
from cdb.report.tables import build_table, make_table
from helpers.report import fake_mnist_run as _fake_run


def _sweep_run(root, setting, seed, error, balanced, per_class, label, extra=None):
    d = root / setting / f"seed={seed}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "loss": {"label": label},
                                                   "dataset": {"name": "folder"}}))
    test = {"error": error, "macro_recall": balanced, "per_class_accuracy": per_class, **(extra or {})}
    (d / "metrics.json").write_text(json.dumps({"status": "complete", "test": test,
                                                "class_names": ["cat", "dog", "eel"][:len(per_class)]}))


def test_compare_rows_per_setting_with_hand_computed_means(tmp_path):
    sweep = tmp_path / "outputs" / "default"
    _sweep_run(sweep, "loss=ce", 0, 10.0, 70.0, [90.0, 50.0], "CE")
    _sweep_run(sweep, "loss=ce", 1, 14.0, 66.0, [92.0, 40.0], "CE")
    _sweep_run(sweep, "loss=cdb", 0, 8.0, 80.0, [85.0, 75.0], "CDB-CE")
    _sweep_run(sweep, "loss=cdb", 1, 9.0, 81.0, [86.0, 76.0], "CDB-CE")
    _sweep_run(sweep, "loss=cdb", 2, 13.0, 85.0, [84.0, 86.0], "CDB-CE")
    out = tmp_path / "results"
    build_table("compare", sweep, out)
    rows = {(r["row"], r["col"]): r for r in csv.DictReader((out / "compare.csv").open())}
    assert sorted({r for r, _ in rows}) == ["loss=cdb", "loss=ce"]
    assert [c for r, c in rows if r == "loss=ce"] == ["test error", "balanced accuracy", "class cat", "class dog"]
    ce, cdb = {c: rows[("loss=ce", c)] for _, c in rows}, {c: rows[("loss=cdb", c)] for _, c in rows}
    # CE: error {10, 14} -> 12 ± 2; balanced {70, 66} -> 68 ± 2; dog {50, 40} -> 45 ± 5
    assert [(ce[c]["mean"], ce[c]["std"], ce[c]["n"]) for c in ("test error", "balanced accuracy", "class dog")] \
        == [("12.0000", "2.0000", "2"), ("68.0000", "2.0000", "2"), ("45.0000", "5.0000", "2")]
    # CDB: error {8, 9, 13} -> 10 ± sqrt(14/3) = 2.1602; balanced {80, 81, 85} -> 82 ± sqrt(14/3)
    assert (cdb["test error"]["mean"], cdb["test error"]["std"], cdb["test error"]["n"]) == ("10.0000", "2.1602", "3")
    assert (cdb["balanced accuracy"]["mean"], cdb["class dog"]["mean"]) == ("82.0000", "79.0000")
    md = (out / "compare.md").read_text()
    assert "12.00 ± 2.00 (2)" in md and "10.00 ± 2.16 (3)" in md and "· paper" not in md   # no paper column
    by_label = make_table("compare", sweep, by="loss.label")
    assert list(by_label.spec.rows) == ["loss.label=CDB-CE", "loss.label=CE"]


def test_compare_many_medium_few_instead_of_classes(tmp_path):
    sweep = tmp_path / "sweep"
    shots = {"many_accuracy": 70.0, "medium_accuracy": 40.0, "few_accuracy": 10.0,
             "group_thresholds": {"many_above": 21, "few_below": 4, "rule": "terciles"}}
    _sweep_run(sweep, "loss=ce", 0, 60.0, 40.0, [50.0] * 12, "CE", shots)
    _sweep_run(sweep, "loss=ce", 1, 62.0, 38.0, [50.0] * 12, "CE",
               {k: (v + 2 if isinstance(v, float) else v) for k, v in shots.items()})
    _sweep_run(sweep, "loss=cdb", 0, 58.0, 44.0, [50.0] * 12, "CDB-CE")        # reports no shot groups
    table = make_table("compare", sweep)
    assert table.spec.cols == ["test error", "balanced accuracy", "many-shot", "medium-shot", "few-shot"]
    cells = table.cells.set_index(["row", "col"])
    assert cells.loc[("loss=ce", "few-shot"), "mean"] == 11.0 and cells.loc[("loss=ce", "few-shot"), "std"] == 1.0
    assert cells.loc[("loss=cdb", "few-shot"), "n"] == 0
    assert "| —" in table.markdown()                                      # not reported: a dash, never a number
    assert 'thresholds of the runs: {"few_below": 4, "many_above": 21, "rule": "terciles"}' in table.markdown()
    (tmp_path / "empty").mkdir()
    with pytest.raises(CdbError, match="holds no finished run"):
        make_table("compare", tmp_path / "empty")


def test_compare_row_labels_drop_the_overrides_every_row_shares():
    names = {"dataset.path=_d,dataset=folder,loss=ce,trainer.milestones=[1,2]",
             "dataset.path=_d,dataset=folder,loss=cdb,trainer.milestones=[1,2]"}
    short, shared = short_names(names)
    assert sorted(short.values()) == ["loss=cdb", "loss=ce"]
    assert shared == ["dataset.path=_d", "dataset=folder", "trainer.milestones=[1,2]"]
    assert short_names({"a=1"}) == ({"a=1": "a=1"}, [])                  # one setting keeps its full name
    assert sorted(short_names({"a=1,b=2", "a=1"})[0].values()) == ["a=1", "b=2"]   # never an empty label


def test_compare_counts_a_diverged_run_in_its_row(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs, "a", 1.5, 0.99, 0, 2.0)
    _fake_run(runs, "a", 1.5, 0.99, 1, 0.0)
    (runs / "a" / "seed=1" / "metrics.json").write_text(json.dumps({"status": "diverged", "steps": [0, 50]}))
    rows = {(r["row"], r["col"]): r for r in csv.DictReader(io.StringIO(make_table("compare", runs).csv()))}
    assert (rows[("a", "test error")]["n"], rows[("a", "test error")]["diverged"]) == ("1", "1")
    assert rows[("a", "test error")]["mean"] == "2.0000"


def _decoupled_run(root, source_setting, method_dir, seed, error, label):
    """A run directory as cdb-decouple writes it beside its source (config: decouple.source_setting and label)."""
    d = root / f"{source_setting},decouple={method_dir}" / f"seed={seed}"
    d.mkdir(parents=True)
    cfg = {"seed": seed, "loss": {"label": label}, "dataset": {"name": "folder"},
           "decouple": {"method": method_dir, "label": label, "source_setting": source_setting,
                        "source": str(root / source_setting / f"seed={seed}")}}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    (d / "metrics.json").write_text(json.dumps({"status": "complete", "test": {
        "error": error, "macro_recall": 100 - error, "per_class_accuracy": [50.0, 50.0]},
        "class_names": ["cat", "dog"]}))


def test_compare_names_decoupled_runs_by_their_method(tmp_path):
    one = tmp_path / "one"
    _sweep_run(one, "loss=ce", 0, 10.0, 70.0, [90.0, 50.0], "CE")
    _decoupled_run(one, "loss=ce", "crt", 0, 6.0, "cRT")
    _decoupled_run(one, "loss=ce", "crt", 1, 8.0, "cRT")      # another seed: its source path differs, same row
    _decoupled_run(one, "loss=ce", "tau_norm", 0, 7.0, "tau-norm (tau=0.7)")
    rows = {(r["row"], r["col"]): r for r in csv.DictReader(io.StringIO(make_table("compare", one).csv()))}
    assert sorted({r for r, _ in rows}) == ["cRT", "loss=ce", "tau-norm (tau=0.7)"]
    # cRT: error {6, 8} -> 7 ± 1 over 2 runs
    assert (rows[("cRT", "test error")]["mean"], rows[("cRT", "test error")]["std"],
            rows[("cRT", "test error")]["n"]) == ("7.0000", "1.0000", "2")
    # with several source settings, a decoupled row names its source's setting first
    two = tmp_path / "two"
    _sweep_run(two, "loss=ce", 0, 10.0, 70.0, [90.0, 50.0], "CE")
    _sweep_run(two, "loss=cdb", 0, 9.0, 71.0, [90.0, 52.0], "CDB-CE")
    _decoupled_run(two, "loss=ce", "lws", 0, 6.0, "LWS")
    _decoupled_run(two, "loss=cdb", "lws", 0, 5.0, "LWS")
    table = make_table("compare", two)
    assert list(table.spec.rows) == ["loss=cdb", "loss=cdb + LWS", "loss=ce", "loss=ce + LWS"]
    # grouped by label, the two LWS runs (of two sources) would share a cell: refused, naming the difference
    with pytest.raises(CdbError, match="decouple.source_setting is 'loss=cdb'"):
        make_table("compare", two, by="loss.label")


def _two_checkpoint_run(root, setting, seed, last, best, select="last"):
    """A finished run whose metrics.json holds both checkpoints, as cdb-run writes it: each (test error, test per
    class, val balanced, val per class); `test` and `collapsed` are the selected checkpoint's."""
    d = root / setting / f"seed={seed}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "loss": {"label": "CDB-CE"},
                                                   "dataset": {"name": "folder"}, "trainer": {"select": select}}))

    def ckpt(err, per_class, val_bal, val_per_class, unit):
        return {"unit": unit,
                "test": {"error": err, "macro_recall": sum(per_class) / 2, "per_class_accuracy": per_class,
                         "collapsed": [n for n, a in zip("ab", per_class) if a < 1]},
                "val": {"macro_recall": val_bal, "per_class_accuracy": val_per_class,
                        "collapsed": [n for n, a in zip("ab", val_per_class) if a < 1]}}
    cks = {"last": ckpt(*last, 30), "best": ckpt(*best, 7)}
    sel = cks[select]
    lost = sorted(set(sel["test"]["collapsed"]) | set(sel["val"]["collapsed"]))
    (d / "metrics.json").write_text(json.dumps({"status": "complete", "selected": select, "checkpoints": cks,
                                                "test": sel["test"], "class_names": ["a", "b"],
                                                "collapsed": {c: ["test"] for c in lost}}))


def test_compare_select_both_reads_last_and_best_checkpoints_of_the_same_runs(tmp_path):
    """--select both: every run gives a trainer.select=last and a trainer.select=best row from its metrics.json, each
    with that checkpoint's test values, its collapse and its balanced validation accuracy (the column settings are
    chosen by); the run count stays the number of run directories."""
    runs = tmp_path / "runs"
    # seed 0: last collapsed (class a at 0 %), best fine; seed 1: fine at both
    _two_checkpoint_run(runs, "loss=cdb", 0, (50.0, [0.0, 100.0], 50.0, [0.0, 100.0]),
                        (10.0, [80.0, 100.0], 95.0, [90.0, 100.0]))
    _two_checkpoint_run(runs, "loss=cdb", 1, (20.0, [60.0, 100.0], 85.0, [70.0, 100.0]),
                        (12.0, [76.0, 100.0], 90.0, [80.0, 100.0]))
    table = make_table("compare", runs, select="both")
    cells = table.cells.set_index(["row", "col"])
    assert list(table.spec.rows) == ["trainer.select=best", "trainer.select=last"]
    assert table.spec.cols[-1] == "val balanced accuracy"
    # last: error {50, 20} -> 35 ± 15, val {50, 85} -> 67.5; best: error {10, 12} -> 11 ± 1, val {95, 90} -> 92.5
    assert (cells.loc[("trainer.select=last", "test error"), "mean"],
            cells.loc[("trainer.select=last", "test error"), "std"]) == (35.0, 15.0)
    assert cells.loc[("trainer.select=last", "val balanced accuracy"), "mean"] == 67.5
    assert (cells.loc[("trainer.select=best", "test error"), "mean"],
            cells.loc[("trainer.select=best", "test error"), "std"]) == (11.0, 1.0)
    assert cells.loc[("trainer.select=best", "val balanced accuracy"), "mean"] == 92.5
    assert cells.loc[("trainer.select=last", "test error"), "collapsed"] == 1
    assert cells.loc[("trainer.select=best", "test error"), "collapsed"] == 0
    md = table.markdown()
    assert md.startswith("# Comparison of 2 finished runs") and "every row also has: loss=cdb" in md
    # the default reads the checkpoint each run reports (last here): no select rows, and the same figures
    plain = make_table("compare", runs).cells.set_index(["row", "col"])
    assert plain.loc[("loss=cdb", "test error"), "mean"] == 35.0
    assert plain.loc[("loss=cdb", "val balanced accuracy"), "mean"] == 67.5
    best = make_table("compare", runs, select="best").cells.set_index(["row", "col"])
    assert best.loc[("loss=cdb,trainer.select=best", "test error"), "mean"] == 11.0


def test_compare_select_replaces_a_select_in_the_override_name_and_refuses_what_it_cannot_read(tmp_path):
    runs = tmp_path / "runs"
    _two_checkpoint_run(runs, "loss=cdb,trainer.select=best", 0, (50.0, [0.0, 100.0], 50.0, [0.0, 100.0]),
                        (10.0, [80.0, 100.0], 95.0, [90.0, 100.0]), select="best")
    _sweep_run(runs, "loss=ce", 0, 10.0, 70.0, [90.0, 50.0], "CE")           # no checkpoints in its metrics.json
    rows = make_table("compare", runs / "loss=cdb,trainer.select=best", select="both").spec.rows
    assert sorted(rows) == ["trainer.select=best", "trainer.select=last"]
    assert make_table("compare", runs / "loss=cdb,trainer.select=best").cells.set_index(
        ["row", "col"]).loc[("loss=cdb,trainer.select=best", "test error"), "mean"] == 10.0  # the run's own choice
    with pytest.raises(CdbError, match=r"loss=ce/seed=0: metrics.json has no best checkpoint"):
        make_table("compare", runs, select="best")
    with pytest.raises(CdbError, match="--select 'first' is not allowed"):
        make_table("compare", runs, select="first")
    with pytest.raises(CdbError, match="for `cdb-table compare` only"):
        make_table("table1", runs, select="best")
