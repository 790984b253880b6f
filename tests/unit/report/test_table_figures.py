"""cdb-figures table1 / table2: Tables 1-2 as pictures (test error against the majority ratio, ours beside the
paper's points) from run records; the numbers plotted are those of the table; an empty folder is one line."""
from __future__ import annotations

import math

import pytest

from cdb.cli import figures as figures_cli
from cdb.report.figures import paper_mean_sd, table_series
from helpers.report import fake_mnist_run, is_png_with_command


def small_records(root):
    for seed, err in enumerate([2.0, 3.0, 7.0]):
        fake_mnist_run(root, "cdb99", "dynamic", 0.99, seed, err)
    fake_mnist_run(root, "cdb90", "dynamic", 0.9, 0, 1.0)
    for seed, err in enumerate([8.0, 10.0]):
        fake_mnist_run(root, "ce", 0, 0.99, seed, err, label="CE", weighting="none")
    fake_mnist_run(root, "tau2", 2.0, 0.995, 0, 5.0)


def test_figure_command_writes_each_table_as_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    runs, out = tmp_path / "runs", tmp_path / "out"
    small_records(runs)
    for name in ("table1", "table2"):
        argv = [name, "--runs", str(runs), "--out", str(out)]
        figures_cli.main(argv)
        assert is_png_with_command(out / f"{name}.png", "cdb-figures " + " ".join(argv))
    assert capsys.readouterr().out.split() == [str(out / "table1.png"), str(out / "table2.png")]


def test_points_are_the_tables_cells(tmp_path):
    small_records(tmp_path)
    _, cells = table_series("table1", tmp_path)
    c = cells.set_index(["row", "col"])
    assert c.loc[("CDB-CE", "0.99"), "mean"] == pytest.approx(4.0)          # (2 + 3 + 7) / 3
    assert (c.loc[("CDB-CE", "0.99"), "min"], c.loc[("CDB-CE", "0.99"), "max"]) == (2.0, 7.0)
    assert c.loc[("CE", "0.99"), "n"] == 2 and c.loc[("CE", "0.99"), "mean"] == 9.0
    assert c.loc[("CE", "0.9"), "n"] == 0 and math.isnan(c.loc[("CE", "0.9"), "mean"])
    assert paper_mean_sd(c.loc[("CDB-CE", "0.99"), "paper"]) == (2.39, 0.41)   # the paper's Table 1 cell
    assert all(math.isnan(v) for v in paper_mean_sd("—"))


def test_empty_folder_fails_in_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        figures_cli.main(["table1", "--runs", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert err == f"cdb-figures: error: --runs {str(tmp_path / 'empty')!r} holds no finished run of table1: " \
                  "nothing to plot\n"
    assert not (tmp_path / "out" / "table1.png").exists()
