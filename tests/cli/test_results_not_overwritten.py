"""Results are never overwritten by accident: cdb-table without --out prints and writes nothing
(a committed results/table2.md stays as it was), a write names every file it wrote, cdb-figures keeps an existing
PNG under its default folder unless --out names it, and PNGs get the tables' file mode (the umask's) from every
writer: cdb-figures, cdb.report.figures and studies/mnist_protocol/paper_schedule.py."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cdb.report.tables import make_table
from helpers import REPO
from helpers.report import fake_mnist_run


def _cli(module: str, args: list[str], cwd: Path, umask: int = 0o022) -> subprocess.CompletedProcess:
    """`cdb-table` / `cdb-figures` as a user runs them, in `cwd`, under `umask`."""
    code = f"import os; os.umask({umask:#o}); from cdb.cli.{module} import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


def _runs(root: Path) -> Path:
    fake_mnist_run(root, "a", 1.5, 0.99, 0, 2.0)
    fake_mnist_run(root, "a", 1.5, 0.99, 1, 4.0)
    fake_mnist_run(root, "b", "dynamic", 0.9, 0, 1.0)
    return root


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_cdb_table_without_out_prints_and_leaves_results_as_they_were(tmp_path):
    """The user's report: `cdb-table table2 --runs outputs/default` in a checkout replaced results/table2.md."""
    runs = _runs(tmp_path / "outputs" / "default")
    committed = tmp_path / "results" / "table2.md"
    committed.parent.mkdir()
    committed.write_text("the 105-run table\n")
    before = committed.stat().st_mtime_ns
    r = _cli("table", ["table2", "--runs", "outputs/default"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert committed.read_text() == "the 105-run table\n" and committed.stat().st_mtime_ns == before
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["table2.md"]   # no table2.csv either
    assert [p for p in tmp_path.rglob("table2.*") if p != committed] == []             # nothing written anywhere
    # standard output is the table, the same text make_table renders (its "Generated" minute aside)
    expected = make_table("table2", [str(runs)]).text("md")
    strip = lambda text: [line for line in text.splitlines() if not line.startswith("Generated ")]
    assert strip(r.stdout) == strip(expected) and "3.00 ± 1.00 (2) · paper 2.31 ± 0.38" in r.stdout
    assert r.stderr.strip() == "cdb-table: printed only, nothing written; --out DIR writes table2.md, table2.csv there"


def test_cdb_table_out_replaces_and_names_every_file_it_wrote(tmp_path):
    _runs(tmp_path / "runs")
    out = tmp_path / "results"
    out.mkdir()
    (out / "table2.md").write_text("old\n")
    r = _cli("table", ["table2", "--runs", "runs", "--out", "results", "--format", "md,csv,json"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [f"cdb-table: wrote results/table2.{ext}" for ext in ("md", "csv", "json")]
    assert r.stdout == (out / "table2.md").read_text() != "old\n"   # the first format is still printed
    cells = {(c["row"], c["col"]): c for c in json.loads((out / "table2.json").read_text())}
    assert (cells[("1.5", "0.99")]["mean"], cells[("1.5", "0.99")]["n"]) == (3.0, 2)
    # `--out -` prints only, as before, without the hint
    r = _cli("table", ["table2", "--runs", "runs", "--out", "-", "--format", "csv"], tmp_path)
    assert r.returncode == 0 and r.stderr == "" and "table2,1.5,0.99,3.0000,1.0000,2" in r.stdout


def test_cdb_figures_keeps_an_existing_png_unless_out_names_its_folder(tmp_path):
    pytest.importorskip("matplotlib")
    r = _cli("figures", ["figure2"], tmp_path)                    # nothing there yet: written to results/
    png = tmp_path / "results" / "figure2.png"
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["results/figure2.png"] and png.stat().st_size > 10_000
    png.write_bytes(b"a figure someone committed")
    r = _cli("figures", ["figure2", "--taus", "0,1"], tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == ("cdb-figures: error: results/figure2.png exists and was kept: "
                                                      "pass --out results to replace it, or --out DIR to write "
                                                      "elsewhere"), r.stderr
    assert png.read_bytes() == b"a figure someone committed"
    r = _cli("figures", ["figure2", "--taus", "0,1", "--out", "results"], tmp_path)
    assert r.returncode == 0 and r.stdout.splitlines() == ["results/figure2.png"], r.stderr
    assert png.read_bytes().startswith(b"\x89PNG")


def _fake_finished_run(root: Path) -> Path:
    run = root / "loss=cdb" / "seed=0"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"status": "complete", "selected": "last",
                                                  "train_class_counts": [50, 5], "class_names": ["4", "9"],
                                                  "test": {"per_class_accuracy": [70.0, 90.0]}}))
    (run / "log.jsonl").write_text("".join(json.dumps({"unit": u, "weights": [0.3, 0.1 * u], "tau": 1.0}) + "\n"
                                           for u in (1, 2)))
    return run


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640)])
def test_pngs_get_the_tables_file_mode(tmp_path, umask, mode):
    """Every PNG writer gives the mode the umask gives, as the tables get (mkstemp alone would give 0600)."""
    pytest.importorskip("matplotlib")
    _runs(tmp_path / "runs")
    run = _fake_finished_run(tmp_path / "one")
    for module, args in (("table", ["table2", "--runs", "runs", "--out", "res"]),
                         ("figures", ["figure2", "--out", "res"]),
                         ("figures", ["run", str(run), "--out", "res", "--name", "r"])):
        r = _cli(module, args, tmp_path, umask)
        assert r.returncode == 0, r.stderr
    sched = tmp_path / "paper_schedule" / "loss=ce" / "seed=0"
    sched.mkdir(parents=True)
    (sched / "config.yaml").write_text("seed: 0\nloss: {name: ce, label: CE}\ntrainer: {length: 2}\n")
    (sched / "log.jsonl").write_text("".join(json.dumps({"unit": u, "val_balanced_accuracy": 60.0,
                                                         "weights": [1.0, 1.0]}) + "\n" for u in (1, 2)))
    code = (f"import os, runpy, sys; os.umask({umask:#o}); sys.argv = ['paper_schedule.py', '--runs', "
            f"'paper_schedule', '--out', 'res']; runpy.run_path({str(REPO / 'scripts' / 'paper_schedule.py')!r}, "
            "run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    written = {p.name: _mode(p) for p in (tmp_path / "res").iterdir()}
    assert set(written) == {"table2.md", "table2.csv", "figure2.png", "r_figure1.png", "r_weights.png",
                            "paper_schedule.md", "paper_schedule.csv", "paper_schedule.png"}   # no temporaries left
    assert written == {name: mode for name in written}, written
