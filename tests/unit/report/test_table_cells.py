"""cdb-table: cells aggregate the right runs (mean, population std, count; collapsed and diverged runs counted),
unmatched cells stay empty; the output formats, the settings and notes under a table, runs side by side, and
one line for damaged runs. (The compare table: test_compare_table.py.)"""
import csv
import json
import re

import pytest

from cdb.cli.table import main as table
from cdb.core.errors import CdbError
from cdb.cli.table import build as main
from cdb.report.tables import build_table, make_table
from helpers.report import fake_mnist_run as _fake_run


def test_table2_cells_by_hand(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs, "a", 1.5, 0.99, 0, 2.0)
    _fake_run(runs, "a", 1.5, 0.99, 1, 4.0)
    _fake_run(runs, "b", "dynamic", 0.9, 0, 1.0)
    _fake_run(runs, "e", 7.0, 0.995, 0, 50.0, per_class=(0.0, 100.0))  # a collapsed run is flagged
    _fake_run(runs, "e", 7.0, 0.995, 1, 4.0)
    _fake_run(runs, "c", 1.5, 0.99, 2, 100.0, complete=False)       # unfinished: ignored
    _fake_run(runs, "d", 0.0, 0.99, 0, 9.0, weighting="none", label="CE")  # not a CDB run: not in table 2
    md_path = build_table("table2", runs, tmp_path / "out", command="make table2-quick")[0]
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
    md = build_table("table1", runs, tmp_path / "out")[0].read_text()
    assert "- `trainer.lr`: 0.01 (CE, IFW); 0.001 (L2RW)" in md
    assert "- `trainer.length`: 2000\n" in md                  # a value shared by every row: listed once
    assert "- `model.name`: lenet_ren\n" in md                # the network is named: it is not the paper's LeNet-5
    _fake_run(runs, "l2rw_mixed", 0, 0.9, 0, 2.0, label="L2RW", weighting="l2rw", lr=0.01)
    md = build_table("table1", runs, tmp_path / "out")[0].read_text()
    assert "- `trainer.lr`: 0.001, 0.01\n" in md              # a row with both values: no per-row claim


def test_unknown_table_and_missing_runs_dir(tmp_path):
    with pytest.raises(CdbError, match="not known"):
        build_table("table99", tmp_path, tmp_path)
    with pytest.raises(CdbError, match="not a directory"):
        build_table("table2", tmp_path / "nope", tmp_path)


def test_same_numbers_and_csv_lines_as_the_hand_written_tables(tmp_path):
    # The exact lines the pre-pandas cdb-table (commit 9ee379a) wrote for these runs (it ended lines with \r\n):
    # mean of {2, 4, 5} = 11/3, population std sqrt(((2-11/3)^2 + (4-11/3)^2 + (5-11/3)^2) / 3) = sqrt(42/27).
    runs = tmp_path / "runs"
    for seed, err in enumerate([2.0, 4.0, 5.0]):
        _fake_run(runs, "a", 1.5, 0.99, seed, err)
    build_table("table2", runs, tmp_path / "out")
    lines = (tmp_path / "out" / "table2.csv").read_text().splitlines()
    assert lines[0] == "table,row,col,mean,std,n,collapsed,diverged,paper"   # + diverged since 9ee379a
    assert "table2,1.5,0.99,3.6667,1.2472,3,0,0,2.31 ± 0.38" in lines    # 11/3, sqrt(42/27) = 1.24722
    assert "table2,0.5,0.9,,,0,0,0,1.06 ± 0.34" in lines                 # no run: empty, never filled
    assert len(lines) == 1 + 7 * 5
    md = (tmp_path / "out" / "table2.md").read_text()
    assert re.search(r"\| 1\.5 +\|.*\| 3\.67 ± 1\.25 \(3\) · paper 2\.31 ± 0\.38 +\|", md)
    assert "population std, ddof=0" in md


def test_formats_json_latex_and_stdout(tmp_path, capsys):
    runs = tmp_path / "runs"
    _fake_run(runs, "a", 1.5, 0.99, 0, 2.0)
    _fake_run(runs, "a", 1.5, 0.99, 1, 4.0)
    out = tmp_path / "out"
    main(["table2", "--runs", str(runs), "--out", str(out), "--format", "json,latex"])
    assert not (out / "table2.md").exists() and not (out / "table2.csv").exists()
    cells = {(c["row"], c["col"]): c for c in json.loads((out / "table2.json").read_text())}
    assert cells[("1.5", "0.99")] | {"mean": 0, "std": 0} == {"table": "table2", "row": "1.5", "col": "0.99",
                                                             "mean": 0, "std": 0, "n": 2, "collapsed": 0,
                                                             "diverged": 0, "paper": "2.31 ± 0.38"}
    assert cells[("1.5", "0.99")]["mean"] == pytest.approx(3.0) and cells[("1.5", "0.99")]["std"] == 1.0
    assert cells[("0.5", "0.9")]["mean"] is None and cells[("0.5", "0.9")]["n"] == 0
    assert capsys.readouterr().out == (out / "table2.json").read_text()     # the first format is printed
    tex = (out / "table2.tex").read_text()
    assert "\\begin{tabular}" in tex and "3.00 ± 1.00 (2) · paper 2.31 ± 0.38" in tex
    assert "test error (\\%)" in tex                                      # % escaped: not a LaTeX comment
    main(["table2", "--runs", str(runs), "--out", "-", "--format", "csv"])
    assert "table2,1.5,0.99,3.0000,1.0000,2,0,0,2.31 ± 0.38" in capsys.readouterr().out
    with pytest.raises(CdbError, match="--format 'xlsx' is not allowed"):
        main(["table2", "--runs", str(runs), "--format", "md,xlsx"])


def test_runs_glob_and_several_folders(tmp_path):
    _fake_run(tmp_path / "sweep1", "a", 1.5, 0.99, 0, 2.0)
    _fake_run(tmp_path / "sweep2", "a", 1.5, 0.99, 1, 4.0)
    _fake_run(tmp_path / "other", "a", 1.5, 0.99, 2, 60.0)
    for runs in (str(tmp_path / "sweep*"), [tmp_path / "sweep1", tmp_path / "sweep2"]):
        table = make_table("table2", runs)
        cell = table.cells.set_index(["row", "col"]).loc[("1.5", "0.99")]
        assert (cell["mean"], cell["n"]) == (3.0, 2)
    with pytest.raises(CdbError, match="matches no directory"):
        make_table("table2", str(tmp_path / "nothing*"))


def test_corrupt_metrics_json_is_one_line_naming_the_file(tmp_path, capsys):
    _fake_run(tmp_path / "runs", "a", 1.5, 0.99, 0, 2.0)
    bad = tmp_path / "runs" / "a" / "seed=0" / "metrics.json"
    bad.write_text('{"status": "complete", "test": {"err')                # a torn write
    with pytest.raises(SystemExit) as exc:
        table(["table2", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("cdb-table: error: ") and str(bad) in err
    bad.write_text(json.dumps({"status": "complete", "test": {}}))       # valid JSON, but no test error
    with pytest.raises(CdbError, match="seed=0.*lack what table2 needs"):
        make_table("table2", tmp_path / "runs")


def test_corrupt_metrics_json_names_the_file(tmp_path):
    from cdb.report.runs import load_runs

    run = tmp_path / "a" / "seed=0"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "metrics.json").write_text('{"status": "compl')
    with pytest.raises(CdbError, match=f"{run / 'metrics.json'} cannot be read as JSON"):
        load_runs(tmp_path)


def test_beside_runs_follow_the_table_with_only_their_columns(tmp_path):
    quick, full = tmp_path / "quick", tmp_path / "paper_schedule"
    _fake_run(quick, "ce", 0, 0.99, 0, 7.0, label="CE", weighting="none")
    _fake_run(full, "loss=ce", 0, 0.99, 0, 8.0, label="CE", weighting="none", lr=0.001)
    _fake_run(full, "loss=ce", 0, 0.99, 1, 10.0, label="CE", weighting="none", lr=0.001)
    _fake_run(full, "loss=cdb", "dynamic", 0.99, 0, 4.0, lr=0.001)
    build_table("table1", [str(quick)], tmp_path / "out", command="make table1-quick", beside=[str(full)],
                beside_command="make paper-schedule")
    md = (tmp_path / "out" / "table1.md").read_text()
    head, tail = md.split("## Beside it: 3 runs under")
    assert "7.00 ± 0.00 (1) · paper 8.59 ± 0.41" in head and "9.00" not in head
    assert "9.00 ± 1.00 (2) · paper 8.59 ± 0.41" in tail and "4.00 ± 0.00 (1) · paper 2.39 ± 0.41" in tail
    assert "make paper-schedule" in tail and "| 0.9 " not in tail  # only the r = 0.99 column
    assert "trainer.lr`: 0.001" in tail
    rows = list(csv.DictReader((tmp_path / "out" / "table1.csv").open()))
    beside = [r for r in rows if r["table"] == "table1_beside"]
    assert [(r["row"], r["col"], r["mean"], r["n"]) for r in beside] == [("CE", "0.99", "9.0000", "2"),
                                                                         ("CDB-CE", "0.99", "4.0000", "1")]


def test_diverged_runs_are_counted_in_their_cell_and_not_averaged(tmp_path):
    """A run that stopped on a non-finite loss (metrics.json status "diverged", as cdb-run writes it) has no test
    error: its cell says so, and n, mean and std are those of the other runs: mean of {2, 4} = 3, std 1."""
    runs = tmp_path / "runs"
    _fake_run(runs, "a", 1.5, 0.99, 0, 2.0)
    _fake_run(runs, "a", 1.5, 0.99, 1, 4.0)
    _fake_run(runs, "a", 1.5, 0.99, 2, 0.0)
    _fake_run(runs, "b", 7.0, 0.9, 0, 0.0)
    for d in (runs / "a" / "seed=2", runs / "b" / "seed=0"):
        (d / "metrics.json").write_text(json.dumps({"status": "diverged", "steps": [700, 750], "message": "x"}))
    build_table("table2", runs, tmp_path / "out")
    rows = {(r["row"], r["col"]): r for r in csv.DictReader((tmp_path / "out" / "table2.csv").open())}
    cell = rows[("1.5", "0.99")]
    assert (cell["mean"], cell["std"], cell["n"], cell["diverged"]) == ("3.0000", "1.0000", "2", "1")
    assert (rows[("7", "0.9")]["n"], rows[("7", "0.9")]["diverged"], rows[("7", "0.9")]["mean"]) == ("0", "1", "")
    md = (tmp_path / "out" / "table2.md").read_text()
    assert "3.00 ± 1.00 (2, 1 diverged) · paper 2.31 ± 0.38" in md
    assert "| 1 diverged · paper 0.96 ± 0.20" in md
    assert "from 4 finished runs (2 of them diverged) under" in md   # 4 run directories, 2 with status diverged


def test_notes_from_the_command_line_follow_the_table(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs, "a", 1.5, 0.99, 0, 2.0)
    main(["table2", "--runs", str(runs), "--out", str(tmp_path / "out"), "--note", "Quick profile: x.",
          "--note", "Second line."])
    md = (tmp_path / "out" / "table2.md").read_text()
    assert md.index("- Quick profile: x.") < md.index("- Second line.")
    assert md.index("Settings of the runs behind the table:") < md.index("- Quick profile: x.")


def test_exclude_leaves_out_matching_run_directories_and_says_so(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs, "loss.normalize=mean,loss=cdb", "dynamic", 0.99, 0, 2.0, normalize="mean")
    _fake_run(runs, "loss.normalize=none,loss=cdb", "dynamic", 0.99, 0, 15.0, normalize="none")
    table("table1 --runs".split() + [str(runs)] + ["--out", str(tmp_path / "a"), "--exclude", "*normalize=none*"])
    rows = {(r["row"], r["col"]): r for r in csv.DictReader((tmp_path / "a" / "table1.csv").open())}
    assert float(rows[("CDB-CE", "0.99")]["mean"]) == 2.0 and rows[("CDB-CE", "0.99")]["n"] == "1"
    assert "from 1 finished runs" in (tmp_path / "a" / "table1.md").read_text()
    assert "except *normalize=none*" in (tmp_path / "a" / "table1.md").read_text()
    # excluding both settings leaves the cell empty; excluding nothing mixes them: refused
    table("table1 --runs".split() + [str(runs)] + ["--out", str(tmp_path / "b"), "--exclude", "*normalize=none*",
                                                   "--exclude", "*normalize=mean*"])
    rows = {(r["row"], r["col"]): r for r in csv.DictReader((tmp_path / "b" / "table1.csv").open())}
    assert rows[("CDB-CE", "0.99")]["n"] == "0"
    with pytest.raises(CdbError, match="settings differ"):
        main(["table1", "--runs", str(runs)])


def test_tables_name_the_machines_that_trained_their_runs(tmp_path):
    runs = tmp_path / "runs"
    cpu = {"from_unit": 0, "torch": "2.14.1", "cpu": "AMD EPYC", "cpu_capability": "AVX512", "threads": 1,
           "device": "cpu"}
    gpu = {"from_unit": 50, "torch": "2.14.1", "gpu": "NVIDIA H200", "device": "cuda", "threads": 16}
    _fake_run(runs, "a", 1.5, 0.99, 0, 2.0, trained_on=[cpu])
    _fake_run(runs, "a", 1.5, 0.99, 1, 3.0, trained_on=[cpu, {**cpu, "from_unit": 40}])  # resumed on the same one
    _fake_run(runs, "a", 1.5, 0.99, 2, 4.0, trained_on=[cpu, gpu])                         # resumed on a GPU
    _fake_run(runs, "b", 1.5, 0.9, 0, 1.0)                                                # before it was recorded
    main(["table2", "--runs", str(runs), "--out", str(tmp_path / "out")])
    line = next(x for x in (tmp_path / "out" / "table2.md").read_text().splitlines() if x.startswith("- trained on"))
    assert line == ("- trained on: torch 2.14.1, CPU AMD EPYC (AVX512 kernels), 1 thread (2 runs); several machines "
                    "in one run: torch 2.14.1, CPU AMD EPYC (AVX512 kernels), 1 thread + torch 2.14.1, NVIDIA H200 "
                    "(1 run); not recorded (1 run)")
