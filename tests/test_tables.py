"""cdb-table: cells aggregate the right runs (mean, population std, count), unmatched cells stay empty."""
import csv
import json

import pytest
import yaml

from cdb.errors import CdbError
from cdb.tables import build_table


def _fake_run(root, name, tau, ratio, seed, error, label="CDB-CE", weighting="cdb", complete=True,
              per_class=(90.0, 99.0), lr=0.01):
    d = root / name / f"seed={seed}"
    d.mkdir(parents=True)
    cfg = {"seed": seed, "dataset": {"name": "mnist_imbalanced", "majority_ratio": ratio},
           "loss": {"label": label, "base": "ce", "weighting": weighting, "tau": tau},
           "trainer": {"unit": "step", "length": 2000, "lr": lr}}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    (d / "metrics.json").write_text(json.dumps({"status": "complete" if complete else "running",
                                                "test": {"error": error, "per_class_accuracy": list(per_class)}}))


def test_table2_cells_by_hand(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs, "a", 1.5, 0.99, 0, 2.0)
    _fake_run(runs, "a", 1.5, 0.99, 1, 4.0)
    _fake_run(runs, "b", "dynamic", 0.9, 0, 1.0)
    _fake_run(runs, "e", 7.0, 0.995, 0, 50.0, per_class=(0.0, 100.0))  # a collapsed run is flagged
    _fake_run(runs, "e", 7.0, 0.995, 1, 4.0)
    _fake_run(runs, "c", 1.5, 0.99, 2, 100.0, complete=False)       # unfinished: ignored
    _fake_run(runs, "d", 0.0, 0.99, 0, 9.0, weighting="none", label="CE")  # not a CDB run: not in table 2
    md_path = build_table("table2", runs, tmp_path / "out", command="make table2-quick")
    rows = {(r["row"], r["col"]): r for r in csv.DictReader((tmp_path / "out" / "table2.csv").open())}
    assert float(rows[("1.5", "0.99")]["mean"]) == pytest.approx(3.0)
    assert float(rows[("1.5", "0.99")]["std"]) == pytest.approx(1.0)   # population std of {2, 4}
    assert rows[("1.5", "0.99")]["n"] == "2" and rows[("1.5", "0.99")]["paper"] == "2.31 ± 0.38"
    assert rows[("dynamic", "0.9")]["n"] == "1"
    assert rows[("0.5", "0.9")]["n"] == "0" and rows[("0.5", "0.9")]["mean"] == ""
    md = md_path.read_text()
    assert "3.00 ± 1.00 (2) · paper 2.31 ± 0.38" in md and "no run · paper 1.06 ± 0.34" in md
    assert "27.00 ± 23.00 (2, 1 collapsed)" in md and rows[("7", "0.995")]["collapsed"] == "1"
    assert rows[("1.5", "0.99")]["collapsed"] == "0"
    assert "make table2-quick" in md and "from 5 finished runs" in md


def test_table1_rows_by_label(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs, "ce", 0, 0.95, 0, 3.0, label="CE", weighting="none")
    _fake_run(runs, "cdb_fixed", 2.0, 0.95, 0, 1.0)      # CDB-CE with fixed tau is not Table 1's CDB row
    _fake_run(runs, "cdb_dyn", "dynamic", 0.95, 0, 2.0)
    build_table("table1", runs, tmp_path / "out")
    rows = {(r["row"], r["col"]): r for r in csv.DictReader((tmp_path / "out" / "table1.csv").open())}
    assert float(rows[("CE", "0.95")]["mean"]) == 3.0
    assert float(rows[("CDB-CE", "0.95")]["mean"]) == 2.0 and rows[("CDB-CE", "0.95")]["n"] == "1"


def test_settings_say_which_rows_ran_at_which_value(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs, "ce", 0, 0.95, 0, 3.0, label="CE", weighting="none")
    _fake_run(runs, "ifw", 0, 0.95, 0, 2.5, label="IFW", weighting="ifw")
    _fake_run(runs, "l2rw", 0, 0.95, 0, 2.0, label="L2RW", weighting="l2rw", lr=0.001)
    md = build_table("table1", runs, tmp_path / "out").read_text()
    assert "- `trainer.lr`: 0.01 (CE, IFW); 0.001 (L2RW)" in md
    assert "- `trainer.length`: 2000\n" in md                  # a value shared by every row: listed once
    _fake_run(runs, "l2rw_mixed", 0, 0.9, 0, 2.0, label="L2RW", weighting="l2rw", lr=0.01)
    md = build_table("table1", runs, tmp_path / "out").read_text()
    assert "- `trainer.lr`: 0.001, 0.01\n" in md              # a row with both values: no per-row claim


def test_unknown_table_and_missing_runs_dir(tmp_path):
    with pytest.raises(CdbError, match="not known"):
        build_table("table99", tmp_path, tmp_path)
    with pytest.raises(CdbError, match="not a directory"):
        build_table("table2", tmp_path / "nope", tmp_path)
