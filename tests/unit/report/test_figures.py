"""Figures: the Figure 2 curves, PNGs from a run directory, and the message when matplotlib is missing.
(scripts/figures.py as a command: tests/scripts/test_figures_script.py.)"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from cdb.cli import figures as figures_cli
from cdb.report import figures
from cdb.core.errors import CdbError
from helpers.report import is_png_with_command


def test_figure2_curves_by_hand():
    d, curves = figures.figure2_curves((0, 0.5, 2), points=5)         # d = 0, .25, .5, .75, 1
    assert d.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert curves[0.0].tolist() == [1, 1, 1, 1, 1]                   # tau 0: plain CE, 0^0 = 1
    assert torch.allclose(curves[2.0], torch.tensor([0, 0.0625, 0.25, 0.5625, 1]))
    assert torch.allclose(curves[0.5], torch.tensor([0, 0.5, 0.70710678, 0.8660254, 1]))


def fake_run(root: Path) -> Path:
    run = root / "table6" / "loss=cdb" / "seed=0"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        "status": "complete", "selected": "last", "train_class_counts": [50, 5, 20],
        "class_names": ["Take", "Clean", "Put"], "test": {"per_class_accuracy": [70.0, 90.0, 40.0]}}))
    rows = [{"unit": u, "weights": [0.3, 0.1 * u, 0.6], "tau": 1.0 + 0.1 * u} for u in range(1, 4)]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_figure_files(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "results"
    figures_cli.main(["figure2", "--out", str(out), "--taus", "0,1,2"])
    assert is_png_with_command(out / "figure2.png", f"cdb-figures figure2 --out {out} --taus 0,1,2")
    run = fake_run(tmp_path)
    paths = figures.run_figures(run, out, command="x")
    assert [p.name for p in paths] == ["table6_loss-cdb_seed-0_figure1.png", "table6_loss-cdb_seed-0_weights.png"]
    assert all(is_png_with_command(p, "x") for p in paths)


def test_errors(tmp_path, monkeypatch, capsys):
    with pytest.raises(CdbError, match="metrics.json is missing"):
        figures.figure1(tmp_path, tmp_path / "f.png")
    (tmp_path / "metrics.json").write_text('{"status": "comp')               # torn write: one line naming it
    with pytest.raises(CdbError, match="metrics.json cannot be read as JSON"):
        figures.figure1(tmp_path, tmp_path / "f.png")
    (tmp_path / "log.jsonl").write_text(json.dumps({"unit": 1}) + "\n")
    with pytest.raises(CdbError, match="no logged weights"):
        figures.weights_over_time(tmp_path, tmp_path / "w.png")
    monkeypatch.setitem(sys.modules, "matplotlib", None)             # as if it were not installed
    with pytest.raises(SystemExit):
        figures_cli.main(["figure2", "--out", str(tmp_path)])
    assert "cdb-figures: error: plotting needs matplotlib" in capsys.readouterr().err


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_weights_plot_names_classes_as_the_tables_do(tmp_path):
    """The tables (cdb-table compare) head their class columns with the dataset's class names ("class 4",
    "class 9" on MNIST 4/9); the weights plot labels its lines the same, not by index."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    run = fake_run(tmp_path)                                            # class_names Take, Clean, Put
    fig = figures.weights_figure(run)
    assert _legend(fig) == ["class Take", "class Clean", "class Put"]
    plt.close(fig)
    # a run still training has no metrics.json yet: its data.json records the names
    (run / "metrics.json").unlink()
    (run / "data.json").write_text(json.dumps({"dataset": "mnist_imbalanced", "class_names": ["4", "9", "x"]}))
    fig = figures.weights_figure(run)
    assert _legend(fig) == ["class 4", "class 9", "class x"]
    plt.close(fig)
