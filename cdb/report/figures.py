"""The paper's figures as PNG: Figure 2 (weight vs difficulty for several tau), and from any run directory
Figure 1 (training class distribution and class-wise test accuracy) and the class weights / tau over time.

Plotting is optional (pip install 'cdb-loss[plot]'); matplotlib is imported only here, on use. Each PNG records
the command that made it in its metadata ("Description") and is written like the tables (cdb.rundir.io: a
temporary file renamed over the target, with the mode the umask gives, 0644 under umask 022).
`cdb-figures figure2 --out results` / `cdb-figures run <run dir> --out results` (also `python -m cdb figures`
and `python scripts/figures.py` from a checkout).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import torch

from cdb.core.errors import CdbError
from cdb.losses.weighting import cdb_weights
from cdb.report.runs import read_json
from cdb.rundir import DATA, LOG, METRICS
from cdb.rundir.io import atomic_write_bytes, read_jsonl

FIGURE2_TAUS = (0.0, 0.5, 1.0, 1.5, 2.0, 5.0)


def pyplot():
    try:
        import matplotlib  # optional dependency (cdb-loss[plot])
    except ImportError:
        raise CdbError("plotting needs matplotlib, which is not installed: pip install 'cdb-loss[plot]' "
                       "(or pip install matplotlib)") from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt  # optional dependency, after matplotlib.use
    return plt


def save_png(fig, path: Path, command: str) -> Path:
    """Write the figure as PNG atomically (temporary file + rename)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight", metadata={"Software": "cdb", "Description": command})
    atomic_write_bytes(path, buf.getvalue())  # the same writer (and file mode) as the tables
    return path


def figure2_curves(taus: Sequence[float] = FIGURE2_TAUS, points: int = 201) -> tuple[torch.Tensor, dict]:
    """Difficulty grid d in [0, 1] and, per tau, the weight w = d**tau that cdb_weights gives (eq. 2, no rescaling)."""
    d = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
    return d, {float(t): cdb_weights(1.0 - d, float(t), "none")[0] for t in taus}


FIGURE2 = "figure2.png"


def figure2(out: Path, taus: Sequence[float] = FIGURE2_TAUS, command: str = "") -> Path:
    """Figure 2: class weight against class difficulty for each tau."""
    plt = pyplot()
    d, curves = figure2_curves(taus)
    fig, ax = plt.subplots(figsize=(5, 4))
    for tau, w in curves.items():
        ax.plot(d.numpy(), w.numpy(), label=f"tau = {tau:g}")
    ax.set_xlabel("difficulty d_c = 1 - A_c")
    ax.set_ylabel("weight w_c = d_c^tau")
    ax.set_title("Figure 2: effect of tau on the difficulty-based weights")
    ax.legend()
    ax.grid(alpha=0.3)
    path = save_png(fig, Path(out) / FIGURE2, command)
    plt.close(fig)
    return path


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise CdbError(f"{path} is missing: pass a run directory (it holds config.yaml, log.jsonl, metrics.json)")
    return read_json(path)  # cdb.report.runs.read_json: a one-line error for a corrupt file


def figure1(run_dir: Path, out: Path, command: str = "") -> Path:
    """Figure 1 from a finished run: (a) training images per class, (b) class-wise test accuracy, classes
    sorted by training size as in the paper."""
    plt = pyplot()
    m = _read_json(Path(run_dir) / METRICS)
    counts, acc = m["train_class_counts"], m["test"]["per_class_accuracy"]
    names = class_names(run_dir, len(counts))
    order = sorted(range(len(counts)), key=lambda c: -counts[c])
    xs = range(len(order))
    fig, (a, b) = plt.subplots(1, 2, figsize=(max(8, 0.35 * len(order) * 2), 4))
    a.bar(xs, [counts[c] for c in order], color="tab:blue")
    a.set_title("(a) training images per class")
    b.bar(xs, [acc[c] for c in order], color="tab:orange")
    b.set_title("(b) class-wise test accuracy (%)")
    b.set_ylim(0, 100)
    for ax in (a, b):
        if len(order) <= 40:
            ax.set_xticks(list(xs))
            ax.set_xticklabels([names[c] for c in order], rotation=90, fontsize=7)
        else:
            ax.set_xlabel("classes, most frequent first")
    fig.suptitle(f"Figure 1 ({m.get('selected', 'last')} checkpoint): {Path(run_dir)}", fontsize=8)
    path = save_png(fig, Path(out), command)
    plt.close(fig)
    return path


def class_names(run_dir: Path, count: int) -> list[str]:
    """The run's class names, as the tables print them: from metrics.json, else data.json (a run still training),
    else the class indices."""
    for name in (METRICS, DATA):
        path = Path(run_dir) / name
        if path.is_file():
            names = _read_json(path).get("class_names") or []
            if len(names) == count:
                return [str(n) for n in names]
    return [str(c) for c in range(count)]


def weights_over_time(run_dir: Path, out: Path, command: str = "") -> Path:
    """Class weights (one line per class) and tau after every validation, from a run's log.jsonl."""
    plt = pyplot()
    fig = weights_figure(run_dir)
    path = save_png(fig, Path(out), command)
    plt.close(fig)
    return path


def weights_figure(run_dir: Path):
    """The figure of weights_over_time, one line per class, labelled by class name (class_names)."""
    plt = pyplot()
    rows = [r for r in read_jsonl(Path(run_dir) / LOG) if "weights" in r]
    if not rows:
        raise CdbError(f"{Path(run_dir) / 'log.jsonl'} has no logged weights: is it a run directory with at least "
                       "one validation?")
    units = [r["unit"] for r in rows]
    w = torch.tensor([r["weights"] for r in rows], dtype=torch.float64)
    has_tau = any("tau" in r for r in rows)
    fig, axes = plt.subplots(2 if has_tau else 1, 1, figsize=(7, 6 if has_tau else 3.5), sharex=True, squeeze=False)
    ax = axes[0][0]
    cmap = plt.get_cmap("viridis")
    names = class_names(run_dir, w.shape[1])
    for c in range(w.shape[1]):
        ax.plot(units, w[:, c].numpy(), color=cmap(c / max(1, w.shape[1] - 1)), lw=1,
                label=f"class {names[c]}" if w.shape[1] <= 10 else None)
    ax.set_ylabel("class weight w_c")
    ax.set_title("class weights after each validation (colour: class, in label order)")
    if w.shape[1] <= 10:
        ax.legend(fontsize=7, ncol=2)
    if has_tau:
        axes[1][0].plot(units, [r.get("tau", float("nan")) for r in rows], color="black")
        axes[1][0].set_ylabel("tau")
    axes[-1][0].set_xlabel("unit (epoch or step, see trainer.unit)")
    return fig


def run_figure_paths(run_dir: Path, out: Path, name: str | None = None) -> list[Path]:
    """Where run_figures writes Figure 1 and the weights/tau plot of one run: named after the run directory."""
    name = name or "_".join(Path(run_dir).resolve().parts[-3:]).replace("=", "-").replace(",", "_")
    return [Path(out) / f"{name}_figure1.png", Path(out) / f"{name}_weights.png"]


def run_figures(run_dir: Path, out: Path, name: str | None = None, command: str = "") -> list[Path]:
    """Figure 1 and the weights/tau plot of one run, named after the run directory."""
    fig1, weights = run_figure_paths(run_dir, out, name)
    return [figure1(Path(run_dir), fig1, command), weights_over_time(Path(run_dir), weights, command)]


# ---- Tables 1-2 as pictures: test error against the majority ratio, ours beside the paper's ---------------------
TABLE_FIGURES = ("table1", "table2")


def table_figure_path(name: str, out: Path) -> Path:
    return Path(out) / f"{name}.png"


def paper_mean_sd(text: str) -> tuple[float, float]:
    """'1.50 ± 0.51' -> (1.5, 0.51); a single number has no sd (NaN); '' or '—' -> (NaN, NaN)."""
    parts = [p.strip() for p in str(text).split("±")]
    try:
        mean = float(parts[0])
    except ValueError:
        return float("nan"), float("nan")
    return mean, float(parts[1]) if len(parts) > 1 else float("nan")


def table_series(name: str, runs, exclude: Sequence[str] = ()):
    """The built table `name` (cdb.report.tables.make_table: the same runs, cells and checks as cdb-table) and its
    cells with each cell's min and max over its runs (NaN where a cell has no value)."""
    from cdb.report.tables import make_table  # start-up: at top, +1.3 s (median of 9, loaded) on every cdb-figures

    table = make_table(name, runs, exclude=exclude)
    if not int(table.cells["n"].sum()):
        raise CdbError(f"--runs {table.runs_dir!r} holds no finished run of {name}: nothing to plot")
    values = table.contrib.dropna(subset=["value"])
    spread = values.groupby(["row", "col"])["value"].agg(["min", "max"])
    cells = table.cells.join(spread, on=["row", "col"])
    return table, cells


def table_figure(name: str, runs, out: Path, exclude: Sequence[str] = (), command: str = "") -> Path:
    """out/NAME.png, Table `name` (1 or 2) as a picture: one panel per row of the table (method or tau), test error
    against the majority ratio on a shared log scale; ours, the mean over each cell's runs with a bar from the lowest
    to the highest run (n runs written beside each point), beside the paper's mean ± sd (black open squares); every
    other row's mean in faint grey behind, for the order of the methods."""
    if name not in TABLE_FIGURES:
        raise CdbError(f"no picture of {name!r}: one of {list(TABLE_FIGURES)}")
    plt = pyplot()
    table, cells = table_series(name, runs, exclude)
    spec = table.spec
    xs = list(range(len(spec.cols)))
    by_row = {row: cells[cells["row"] == row].set_index("col").reindex(spec.cols) for row in spec.rows}
    ncols = 4
    nrows = -(-(len(spec.rows) + 1) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 2.7 * nrows), sharex=True, sharey=True,
                             squeeze=False)
    colors = plt.get_cmap("tab10")
    for i, row in enumerate(spec.rows):
        _table_panel(axes.flat[i], row, by_row, xs, colors(i % 10), f"tau = {row}" if name == "table2" else row)
    top = max(float(cells["max"].max()), max((paper_mean_sd(p)[0] for p in cells["paper"]), default=1) or 1)
    _table_axes(axes, spec, xs, top)
    _table_legend(axes.flat[len(spec.rows)])
    fig.suptitle(f"{spec.title}\nours: {table.contrib['path'].nunique()} runs under {table.runs_dir}", fontsize=9)
    fig.tight_layout()
    path = save_png(fig, table_figure_path(name, out), command)
    plt.close(fig)
    return path


def _table_panel(ax, row: str, by_row: dict, xs: list[int], color, title: str) -> None:
    """One row of the table in its panel: the other rows' means in faint grey, this row's mean with a bar from the
    lowest to the highest run and n beside each point, and the paper's mean ± sd as open squares."""
    for other, c in by_row.items():
        if other != row:
            ax.plot(xs, c["mean"], "-", color="0.85", lw=0.8, zorder=1)
    c = by_row[row]
    ax.errorbar(xs, c["mean"], yerr=[c["mean"] - c["min"], c["max"] - c["mean"]], fmt="-o", color=color, ms=4,
                lw=1.5, capsize=2, zorder=3)
    for x, mean, n in zip(xs, c["mean"], c["n"]):
        if n:
            ax.annotate(f"{int(n)}", (x, mean), xytext=(-9, 3), textcoords="offset points", fontsize=6,
                        color=color)
    paper = [paper_mean_sd(p) for p in c["paper"]]
    ax.errorbar([x + 0.15 for x in xs], [m for m, _ in paper], yerr=[0 if s != s else s for _, s in paper],
                fmt="s", mfc="none", color="black", ms=4, capsize=2, lw=0.8, ls=":", zorder=2)
    ax.set_title(title, fontsize=9, color=color)


def _table_axes(axes, spec, xs: list[int], top: float) -> None:
    """The shared axes: a log scale of errors up to about 2 x `top`, the majority ratios below, labels on the outer
    panels, and the panels past the last row switched off."""
    from matplotlib.ticker import FormatStrFormatter, NullFormatter  # optional dependency (cdb-loss[plot])

    ax = axes.flat[0]
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks([t for t in (0.5, 1, 2, 5, 10, 20, 50) if t <= 2 * top])
    ax.set_xticks(xs)
    for a in axes.flat:
        a.grid(alpha=0.3)
        a.tick_params(labelsize=7)
        a.set_xticklabels(spec.cols)
    for a in axes[:, 0]:
        a.set_ylabel(spec.value_name, fontsize=8)
    for a in axes[-1, :]:
        a.set_xlabel("majority ratio r", fontsize=8)
    for a in list(axes.flat)[len(spec.rows):]:
        a.axis("off")


def _table_legend(ax) -> None:
    """What the marks mean, in the first free panel."""
    from matplotlib.lines import Line2D  # optional dependency (cdb-loss[plot])

    ax.legend(handles=[
        Line2D([], [], color="tab:blue", marker="o", label="ours: mean over n runs (n beside it);\n"
                                                            "bar: lowest to highest run"),
        Line2D([], [], color="black", marker="s", mfc="none", ls=":", label="paper: mean ± sd (10 runs)"),
        Line2D([], [], color="0.85", label="the other rows' means (ours)")], loc="center", fontsize=7,
        frameon=False)
