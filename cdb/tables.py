"""Run directories in, paper-style tables out (Markdown, CSV, JSON or LaTeX), each cell beside the paper's number.

A table is a TableSpec: which runs belong to which (row, column) cell and what value they contribute. pandas
does the bookkeeping: one frame row per (run, cell) contribution, `groupby` (row, col) for mean, std and run
count. The std is the population std (ddof=0), as these tables have always printed: the spread of the runs
in hand, not an estimate of a wider population. A cell with no run says so and is never filled otherwise.
Tables are built only from files in run directories (config.yaml + metrics.json), so every number traces
back to its runs.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd
import yaml

from . import paper
from .errors import CdbError

FORMATS = {"md": "md", "csv": "csv", "json": "json", "latex": "tex"}  # --format value: file extension


@dataclass
class Run:
    path: Path
    cfg: dict
    metrics: dict

    @property
    def diverged(self) -> bool:
        """Training stopped on a non-finite loss (metrics.json status "diverged"): no test value, but counted."""
        return self.metrics.get("status") == "diverged"


class _NoValue(dict):
    """The metrics of a diverged run as a table cell function sees them: every value is NaN, so the cell the
    run belongs to (from its config) is found without a number to average."""

    def __missing__(self, key):
        return _NoValue() if key == "test" else math.nan


Cell = tuple[str, str, float]


@dataclass
class TableSpec:
    name: str
    title: str
    rows: list[str]
    cols: list[str]
    cells: Callable[[Run], Iterable[Cell]]   # (row, col, value) contributions of one run
    paper: dict[str, list[str]] = field(default_factory=dict)
    value_name: str = "test error (%)"
    notes: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=lambda: ["trainer.unit", "trainer.length", "trainer.lr",
                                                         "trainer.milestones", "trainer.eval_every",
                                                         "trainer.select", "loss.normalize", "loss.reduction"])
    empty: str = "no run"                    # what a cell without runs says
    flag_collapsed: bool = True              # count runs that ended predicting (almost) one class


# ---- reading run directories -------------------------------------------------------------------------
def read_json(path: str | Path):
    """A JSON file's content; a file that is not JSON is a one-line CdbError naming it (no traceback)."""
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, OSError) as exc:   # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CdbError(f"{path} cannot be read as JSON ({exc}): an interrupted write or a hand edit? "
                       "Repair it or move that run directory out of --runs") from None


def read_yaml(path: str | Path):
    """A YAML file's content, with the same one-line error as read_json."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except (yaml.YAMLError, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0]
        raise CdbError(f"{path} cannot be read as YAML ({reason}): repair it or move that run directory "
                       "out of --runs") from None


def run_dirs(runs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Directories holding a metrics.json under `runs`: one or more folders or globs (searched recursively)."""
    roots: list[Path] = []
    for item in [runs] if isinstance(runs, (str, Path)) else runs:
        text = str(item)
        if glob.has_magic(text):
            found = [Path(p) for p in sorted(glob.glob(text, recursive=True)) if Path(p).is_dir()]
            if not found:
                raise CdbError(f"--runs {text!r} matches no directory")
            roots += found
        elif Path(text).is_dir():
            roots.append(Path(text))
        else:
            raise CdbError(f"--runs {text!r} is not a directory of run directories (nor a glob of them)")
    return sorted({m.parent for root in roots for m in root.rglob("metrics.json")})


def load_runs(runs: str | Path | Sequence[str | Path]) -> list[Run]:
    """Every finished run (metrics.json with status complete or diverged, plus config.yaml) under `runs`."""
    out = []
    for d in run_dirs(runs):
        if not (d / "config.yaml").exists():
            continue
        metrics = read_json(d / "metrics.json")
        if isinstance(metrics, dict) and metrics.get("status") in ("complete", "diverged"):
            out.append(Run(d, read_yaml(d / "config.yaml"), metrics))
    return out


def get(d: dict, dotted: str, default=None):
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def fmt_num(x: float) -> str:
    """0.9 -> '0.9', 1.0 -> '1', 1.5 -> '1.5' (labels as the paper prints them)."""
    return f"{x:g}"


def collapsed(run: Run) -> bool:
    """The selected model predicts (almost) a single class: some class below 1% test accuracy."""
    per_class = run.metrics.get("test", {}).get("per_class_accuracy")
    return bool(per_class) and len(per_class) > 1 and min(per_class) < 1.0


# ---- runs -> frames ------------------------------------------------------------------------------------
def contributions(spec: TableSpec, runs: list[Run]) -> pd.DataFrame:
    """One row per (run, cell) contribution: row, col, value (NaN for a diverged run), collapsed, diverged, path,
    run (the Run itself)."""
    records = []
    for run in runs:
        try:
            cells = list(spec.cells(replace(run, metrics=_NoValue(status="diverged")) if run.diverged else run))
        except (KeyError, TypeError, ValueError) as exc:   # a metrics.json or config.yaml without a needed entry
            if run.diverged:   # a cell function that needs more than scalars (per-class lists): not placed
                continue
            raise CdbError(f"{run.path}: metrics.json / config.yaml lack what {spec.name} needs "
                           f"({type(exc).__name__}: {exc})") from None
        for row, col, value in cells:
            if row in spec.rows and col in spec.cols:
                records.append({"row": row, "col": col, "value": math.nan if run.diverged else float(value),
                                "collapsed": spec.flag_collapsed and not run.diverged and collapsed(run),
                                "diverged": run.diverged, "path": str(run.path), "run": run})
    return pd.DataFrame(records, columns=["row", "col", "value", "collapsed", "diverged", "path", "run"])


def aggregate(spec: TableSpec, contrib: pd.DataFrame) -> pd.DataFrame:
    """Every (row, col) cell of the table, in order: mean, std (ddof=0) and n over the runs with a value,
    collapsed runs, diverged runs (no value), paper value."""
    g = contrib.groupby(["row", "col"])
    stats = pd.DataFrame({"mean": g["value"].mean(), "std": g["value"].std(ddof=0), "n": g["value"].count(),
                          "collapsed": g["collapsed"].sum(), "diverged": g["diverged"].sum()})
    grid = pd.MultiIndex.from_product([spec.rows, spec.cols], names=["row", "col"])
    stats = stats.reindex(grid)
    stats[["n", "collapsed", "diverged"]] = stats[["n", "collapsed", "diverged"]].fillna(0).astype(int)
    stats["paper"] = [paper_value(spec, row, col) for row, col in grid]
    return stats.reset_index().assign(table=spec.name)[["table", "row", "col", "mean", "std", "n", "collapsed",
                                                        "diverged", "paper"]]


def paper_value(spec: TableSpec, row: str, col: str) -> str:
    vals = spec.paper.get(row)
    if not vals:
        return ""
    return vals[spec.cols.index(col)] if isinstance(vals, list) else str(vals)


def cell_text(spec: TableSpec, c) -> str:
    """'mean ± std (n[, k collapsed][, d diverged]) · paper P', 'd diverged', or the empty-cell text."""
    ours = spec.empty
    flags = [f"{c.collapsed} collapsed"] * bool(c.collapsed) + [f"{c.diverged} diverged"] * bool(c.diverged)
    if c.n:
        ours = f"{c.mean:.2f} ± {c.std:.2f} ({', '.join([str(c.n), *flags])})"
    elif c.diverged:
        ours = flags[-1]
    return f"{ours} · paper {c.paper}" if c.paper else ours


def grid(spec: TableSpec, cells: pd.DataFrame) -> pd.DataFrame:
    """The table as printed: one row per table row, one column per table column, cell texts."""
    text = cells.assign(text=[cell_text(spec, c) for c in cells.itertuples()])
    out = text.pivot(index="row", columns="col", values="text").reindex(index=spec.rows, columns=spec.cols)
    out.index.name, out.columns.name = None, None
    return out


def settings_summary(spec: TableSpec, contrib: pd.DataFrame) -> list[str]:
    """One line per setting: its value(s) over the runs behind the table, and which rows used which
    value when the rows differ (e.g. a method run at its own learning rate)."""
    rows: dict[str, list[Run]] = {}
    for row, run in zip(contrib["row"], contrib["run"]):
        rows.setdefault(row, []).append(run)
    runs = [r for rs in rows.values() for r in rs]
    lines = []
    for key in spec.settings:
        vals = sorted({json.dumps(get(r.cfg, key)) for r in runs})
        if not vals or vals == ["null"]:
            continue
        per_row = {row: sorted({json.dumps(get(r.cfg, key)) for r in rows[row]}) for row in spec.rows
                   if row in rows}
        if len(vals) == 1 or any(len(v) > 1 for v in per_row.values()):
            lines.append(f"- `{key}`: {', '.join(v.strip(chr(34)) for v in vals)}")
            continue
        by_value: dict[str, list[str]] = {}
        for row, (v,) in per_row.items():
            by_value.setdefault(v, []).append(row)
        parts = [f"{v.strip(chr(34))} ({', '.join(rs)})" for v, rs in by_value.items()]
        lines.append(f"- `{key}`: {'; '.join(parts)}")
    seeds = sorted({int(get(r.cfg, "seed", 0)) for r in runs})
    if seeds:
        lines.append(f"- seeds: {seeds}")
    return lines


# ---- frames -> text ------------------------------------------------------------------------------------
@dataclass
class Table:
    """A built table: its spec, the per-run contributions, the aggregated cells and where the runs came from."""
    spec: TableSpec
    contrib: pd.DataFrame
    cells: pd.DataFrame
    runs_dir: str
    command: str = ""
    beside: "Table | None" = None   # the same table from other runs (e.g. the paper's full schedule), shown after

    def markdown(self) -> str:
        spec = self.spec
        n_runs = self.contrib["path"].nunique()
        n_diverged = self.contrib.loc[self.contrib["diverged"], "path"].nunique()
        of_which = f" ({n_diverged} of them diverged)" if n_diverged else ""
        md = [f"# {spec.title}", "",
              f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `cdb-table {spec.name}` "
              f"from {n_runs} finished runs{of_which} under `{self.runs_dir}`.", "",
              f"Command: `{self.command}`" if self.command else "Command: (not recorded)", "",
              f"Each cell: ours, {spec.value_name}, mean ± std over n runs (n in brackets; population std, "
              "ddof=0)" + (" · the paper's value" if spec.paper else "") + f". \"{spec.empty}\" = no finished "
              "run for that cell; nothing is filled in otherwise." + (
                  " \"k collapsed\" = k of those runs ended predicting (almost) one class: some class below 1% "
                  "test accuracy." if spec.flag_collapsed else "") + " \"d diverged\" = d more runs of that cell "
              "stopped on a non-finite training loss: they have no value and are not in n.", "",
              grid(spec, self.cells).to_markdown(tablefmt="github", disable_numparse=True), ""]
        settings = settings_summary(spec, self.contrib)
        if settings:
            md += ["Settings of the runs behind the table:", "", *settings, ""]
        md += [f"- {note}" for note in spec.notes]
        if self.beside is not None:
            md += ["", *self.beside.beside_markdown()]
        return "\n".join(md).rstrip() + "\n"

    def beside_markdown(self) -> list[str]:
        """This table as a section after another one: only the columns some run fills, its own settings."""
        spec, n_runs = self.spec, self.contrib["path"].nunique()
        cols = [c for c in spec.cols if c in set(self.contrib["col"])]
        md = [f"## Beside it: {n_runs} run{'' if n_runs == 1 else 's'} under `{self.runs_dir}`", "",
              f"Command: `{self.command}`" if self.command else "Command: (not recorded)", ""]
        if cols:
            md += [grid(spec, self.cells).reindex(columns=cols).to_markdown(tablefmt="github", disable_numparse=True),
                   ""]
        else:
            md += ["No run fills a cell of this table.", ""]
        settings = settings_summary(spec, self.contrib)
        return md + (["Settings of these runs:", "", *settings] if settings else [])

    def _all_cells(self) -> pd.DataFrame:
        if self.beside is None:
            return self.cells
        extra = self.beside.cells[self.beside.cells["n"] > 0].assign(table=f"{self.spec.name}_beside")
        return pd.concat([self.cells, extra], ignore_index=True)

    def csv(self) -> str:
        """One line per cell: table,row,col,mean,std,n,collapsed,diverged,paper (mean/std with 4 decimals, empty if
        no run with a value);
        cells of the runs beside the table follow as table NAME_beside (filled cells only)."""
        return self._all_cells().to_csv(index=False, float_format="%.4f", lineterminator="\n")

    def json(self) -> str:
        """The CSV's records (15 decimals; null where a cell has no run)."""
        return self._all_cells().to_json(orient="records", indent=2, force_ascii=False, double_precision=15) + "\n"

    def latex(self) -> str:
        """The Markdown grid as a LaTeX table (booktabs), for a paper."""
        caption = self.spec.title.replace("%", r"\%")
        return grid(self.spec, self.cells).to_latex(escape=True, caption=caption, label=f"tab:{self.spec.name}")

    def text(self, fmt: str) -> str:
        if fmt not in FORMATS:
            raise CdbError(f"--format {fmt!r} is not allowed: one of {list(FORMATS)}")
        return {"md": self.markdown, "csv": self.csv, "json": self.json, "latex": self.latex}[fmt]()


# ---- the tables ------------------------------------------------------------------------------------------
def _mnist_col(run: Run) -> str:
    return fmt_num(float(get(run.cfg, "dataset.majority_ratio")))


def _table2_cells(run: Run):
    if get(run.cfg, "dataset.name") != "mnist_imbalanced" or get(run.cfg, "loss.label") != "CDB-CE":
        return []   # the paper's CDB-CE only (a stabilised variant has a label of its own)
    tau = get(run.cfg, "loss.tau")
    row = "dynamic" if tau == "dynamic" else fmt_num(float(tau))
    return [(row, _mnist_col(run), run.metrics["test"]["error"])]


def _table1_cells(run: Run):
    if get(run.cfg, "dataset.name") != "mnist_imbalanced":
        return []
    label = get(run.cfg, "loss.label")
    if label == "CDB-CE" and get(run.cfg, "loss.tau") != "dynamic":
        return []
    return [(label, _mnist_col(run), run.metrics["test"]["error"])]


# ---- Tables 3-7: long-tailed CIFAR-100, ImageNet-LT, EGTEA ---------------------------------------------
# Rows of methods the paper copied from other papers (†) are filled only by runs of that method (matched by
# the loss config's label); a run never fills a row of another method. Keys: the `label` of each shipped
# configs/loss/*.yaml (mwn.yaml says "MW-Net") and the other spellings of those methods' names.
DAGGER_ROWS = {
    "Focal": "Focal †", "CB": "Class-Balanced †", "Class-Balanced": "Class-Balanced †", "L2RW": "L2RW †",
    "MW-Net": "Meta-Weight Net †", "MWN": "Meta-Weight Net †", "Meta-Weight Net": "Meta-Weight Net †",
    "EQL": "Equalization loss †", "LDAM-DRW": "LDAM-DRW †",
}
LT_SETTINGS = ["dataset.split", "dataset.val_per_class", "trainer.length", "trainer.batch_size", "trainer.lr",
               "trainer.schedule", "trainer.milestones", "trainer.gamma", "trainer.warmup", "trainer.select",
               "loss.tau_rule", "loss.normalize", "loss.reduction"]


def _is_dynamic_cdb(run: Run) -> bool:
    return get(run.cfg, "loss.weighting") == "cdb" and get(run.cfg, "loss.tau") == "dynamic"


def _cifar100_col(run: Run) -> str | None:
    if get(run.cfg, "dataset.name") != "cifar_lt" or int(get(run.cfg, "dataset.classes", 100)) != 100:
        return None
    col = fmt_num(float(get(run.cfg, "dataset.imbalance")))
    return col if col in paper.IMBALANCES else None


def _method_row(run: Run, own: dict[str, str]) -> str | None:
    """Table row of a run's method: `own` maps labels of rows the paper ran itself; the rest are † rows."""
    label = get(run.cfg, "loss.label")
    if label == "CDB-CE":
        return own.get(label) if _is_dynamic_cdb(run) else None  # the paper's CDB-CE rows use dynamic tau
    return own.get(label) or DAGGER_ROWS.get(label)


def _table3_cells(run: Run):
    col = _cifar100_col(run)
    row = _method_row(run, {"CDB-CE": "CDB-CE"}) if col else None
    return [(row, col, run.metrics["test"]["accuracy"])] if row else []


def _table4_cells(run: Run):
    col = _cifar100_col(run)
    if not col or get(run.cfg, "loss.label") != "CDB-CE":   # the paper's CDB-CE, not a stabilised variant
        return []
    tau = get(run.cfg, "loss.tau")
    return [("dynamic" if tau == "dynamic" else fmt_num(float(tau)), col, run.metrics["test"]["accuracy"])]


TABLE5_COLUMNS = ["Top-1", "Many", "Medium", "Few"]


def _table5_cells(run: Run):
    if get(run.cfg, "dataset.name") != "imagenet_lt":
        return []
    row = _method_row(run, {"CDB-CE": "CDB-CE"})
    if not row:
        return []
    t = run.metrics["test"]
    keys = ["accuracy", "many_accuracy", "medium_accuracy", "few_accuracy"]
    return [(row, col, t[k]) for col, k in zip(TABLE5_COLUMNS, keys) if k in t]


EGTEA_ROWS = {"CE": "CE", "Focal": "Focal", "CB": "CB", "Class-Balanced": "CB", "CDB-CE": "CDB-CE"}


def _egtea_cells(keys: list[str], cols: list[str]):
    def cells(run: Run):
        if get(run.cfg, "dataset.name") != "egtea":
            return []
        label = get(run.cfg, "loss.label")
        row = EGTEA_ROWS.get(label)
        if not row or (row == "CDB-CE" and not _is_dynamic_cdb(run)):  # Table 6: CDB-CE with dynamic tau
            return []
        t = run.metrics["test"]
        return [(row, col, t[k]) for col, k in zip(cols, keys) if k in t]
    return cells


SPECS: dict[str, TableSpec] = {
    "table1": TableSpec(
        name="table1",
        title="Table 1: test error (%) of LeNet-5 on imbalanced MNIST 4/9, by majority class ratio",
        rows=list(paper.TABLE1), cols=paper.RATIOS, cells=_table1_cells, paper=paper.TABLE1,
        notes=["CDB-CE uses the dynamically updated tau (paper eq. 3-4), as in the paper's Table 1."]),
    "table2": TableSpec(
        name="table2",
        title="Table 2: test error (%) of LeNet-5 with CDB-CE on imbalanced MNIST 4/9, by tau and majority ratio",
        rows=list(paper.TABLE2), cols=paper.RATIOS, cells=_table2_cells, paper=paper.TABLE2,
        settings=["trainer.unit", "trainer.length", "trainer.lr", "trainer.milestones", "trainer.eval_every",
                  "trainer.select", "loss.tau_rule", "loss.normalize", "loss.reduction", "loss.floor", "loss.ema",
                  "loss.warmup"]),
    "table3": TableSpec(
        name="table3",
        title="Table 3: top-1 test accuracy (%) of ResNet-32 on long-tailed CIFAR-100, by imbalance",
        rows=list(paper.TABLE3), cols=paper.IMBALANCES, cells=_table3_cells, paper=paper.TABLE3,
        value_name="test accuracy (%)", settings=LT_SETTINGS,
        notes=["† rows: the paper copied these numbers from other papers (Cui et al. 2019, Shu et al. 2019, "
               "Cao et al. 2019); our cells in them come only from our own runs of that method.",
               "CDB-CE uses the dynamically updated tau (paper eq. 3-4), as in the paper's Table 3."]),
    "table4": TableSpec(
        name="table4",
        title="Table 4: top-1 test accuracy (%) of ResNet-32 with CDB-CE on long-tailed CIFAR-100, by tau and "
              "imbalance",
        rows=list(paper.TABLE4), cols=paper.IMBALANCES, cells=_table4_cells, paper=paper.TABLE4,
        value_name="test accuracy (%)", settings=LT_SETTINGS,
        notes=["tau = 0 is plain softmax cross-entropy (w_c = d_c^0 = 1)."]),
    "table5": TableSpec(
        name="table5",
        title="Table 5: top-1 test accuracy (%) of ResNet-10 on ImageNet-LT (with many/medium/few-shot accuracy)",
        rows=list(paper.TABLE5), cols=TABLE5_COLUMNS, cells=_table5_cells,
        paper={k: [v, "", "", ""] for k, v in paper.TABLE5.items()},
        value_name="test accuracy (%)", settings=LT_SETTINGS[2:],
        notes=["† rows: copied by the paper from other papers (Tan et al. 2020, Liu et al. 2019, Kang et al. "
               "2020); our cells in them come only from our own runs of that method.",
               "OLTR + CDB-CE and Joint training + CDB-CE were run inside those methods' own code; cdb does not "
               "implement OLTR or classifier re-training, so those rows stay empty.",
               "Many / Medium / Few: accuracy on classes with > 100 / 20-100 / < 20 training images (OLTR's "
               "protocol); the paper reports only Top-1."]),
    "table6": TableSpec(
        name="table6",
        title="Table 6: 3D-ResNeXt-101 on the EGTEA test split (%)",
        rows=list(paper.TABLE6), cols=paper.TABLE6_COLUMNS,
        cells=_egtea_cells(["accuracy", "top5", "macro_recall", "macro_precision"], paper.TABLE6_COLUMNS),
        paper=paper.TABLE6, value_name="%", settings=LT_SETTINGS[2:] + ["dataset.normalize", "model.pretrained"],
        notes=["Acc@Top1 / Acc@Top5: micro-averaged top-1 / top-5 accuracy; Recall / Precision: macro averages "
               "over the 19 verbs. CDB-CE uses the dynamically updated tau."]),
    "table7": TableSpec(
        name="table7",
        title="Table 7: 3D-ResNeXt-101 on EGTEA, majority (5 most frequent verbs) vs minority (other 14) classes",
        rows=list(paper.TABLE7), cols=paper.TABLE7_COLUMNS,
        cells=_egtea_cells(["majority_recall", "majority_precision", "minority_recall", "minority_precision"],
                           paper.TABLE7_COLUMNS),
        paper=paper.TABLE7, value_name="%", settings=LT_SETTINGS[2:] + ["dataset.normalize", "model.pretrained"],
        notes=["Majority = the 5 most frequent training verbs (the paper: Take, Put, Open, Cut, Read); recall and "
               "precision are macro-averaged within each group. Built from the Table 6 runs."]),
}


def make_table(name: str, runs: str | Path | Sequence[str | Path], command: str = "", by: str = "override",
               beside: Sequence[str | Path] | None = None, beside_command: str = "",
               notes: Sequence[str] = ()) -> Table:
    """Build table `name` (a paper table, or `compare`) from the finished runs under `runs`; with `beside`, the
    same table from those runs (another profile, e.g. the paper's full schedule) follows it; `notes` are added
    to the spec's notes under the table."""
    loaded = load_runs(runs)
    where = ", ".join(map(str, [runs] if isinstance(runs, (str, Path)) else runs))
    if name == "compare":
        from .compare import compare_spec

        if not loaded:   # a paper table is still written, with "no run" cells; a comparison of nothing is not
            raise CdbError(f"--runs {where!r} holds no finished run (metrics.json with status complete)")
        spec = compare_spec(loaded, by)
    elif name in SPECS:
        spec = SPECS[name]
    else:
        raise CdbError(f"table {name!r} is not known: one of {sorted(SPECS) + ['compare']}")
    if notes:
        spec = replace(spec, notes=[*spec.notes, *notes])
    contrib = contributions(spec, loaded)
    other = make_table(name, beside, beside_command, by) if beside else None
    return Table(spec, contrib, aggregate(spec, contrib), where, command, other)


def build_table(name: str, runs_dir, out_dir: str | Path, command: str = "",
                formats: Sequence[str] = ("md", "csv"), by: str = "override",
                beside: Sequence[str | Path] | None = None, beside_command: str = "",
                notes: Sequence[str] = ()) -> Path:
    """Write out_dir/NAME.<ext> in each format; returns the first file's path."""
    from .train.io import atomic_write_text

    table = make_table(name, runs_dir, command, by, beside, beside_command, notes)
    texts = {fmt: table.text(fmt) for fmt in formats}   # every format renders before any file is written
    paths = [Path(out_dir) / f"{name}.{FORMATS[fmt]}" for fmt in texts]
    for path, text in zip(paths, texts.values()):
        atomic_write_text(path, text)
    return paths[0]


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(
        prog="cdb-table", description="Build a table from run directories: a paper table (mean ± std over seeds "
        "beside the paper's number), or `compare`: every setting of a sweep side by side.")
    p.add_argument("name", help=f"one of {sorted(SPECS) + ['compare']}")
    p.add_argument("--runs", required=True, nargs="+", metavar="DIR_OR_GLOB",
                   help="folder(s) or glob(s) of folders holding run directories (searched recursively); quote a "
                        "glob ('outputs/sweep*') or let the shell expand it")
    p.add_argument("--out", default="results",
                   help="where NAME.<ext> goes (default: results); '-' prints the first format and writes nothing")
    p.add_argument("--format", default="md,csv", metavar="FMT[,FMT]",
                   help=f"comma-separated, from {list(FORMATS)} (latex writes NAME.tex); the first one is also "
                        "printed (default: md,csv)")
    p.add_argument("--by", default="override", metavar="override|KEY",
                   help="compare only: one row per run-directory override name without the seed (default), or "
                        "per value of a config key such as loss.label")
    p.add_argument("--command", default="", help="the command that produced the runs, recorded in the table")
    p.add_argument("--beside", nargs="+", metavar="DIR_OR_GLOB",
                   help="runs of the same table under another profile (e.g. the paper's full schedule), shown in a "
                        "section after the table with only the columns they fill")
    p.add_argument("--beside-command", default="", help="the command that produced the --beside runs")
    p.add_argument("--note", action="append", default=[], metavar="TEXT",
                   help="a line printed under the table's settings (repeatable), e.g. what the profile is")
    args = p.parse_args(argv)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    for fmt in formats or [args.format]:
        if fmt not in FORMATS:
            raise CdbError(f"--format {fmt!r} is not allowed: one or more of {list(FORMATS)}, comma-separated")
    if args.out == "-":
        print(make_table(args.name, args.runs, args.command, args.by, args.beside, args.beside_command,
                         args.note).text(formats[0]), end="")
        return
    path = build_table(args.name, args.runs, args.out, args.command, formats, args.by, args.beside,
                       args.beside_command, args.note)
    print(path.read_text(), end="")
