"""Run directories in, paper-style tables out (Markdown, CSV, JSON or LaTeX), each cell beside the paper's number.

A table is a TableSpec: which runs belong to which (row, column) cell and what value they contribute. pandas
does the bookkeeping: one frame row per (run, cell) contribution, `groupby` (row, col) for mean, std and run
count. The std is the population std (ddof=0), as these tables have always printed: the spread of the runs
in hand, not an estimate of a wider population. A cell with no run says so and is never filled otherwise.
Tables are built only from files in run directories (config.yaml + metrics.json), so every number traces
back to its runs.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Iterable

import pandas as pd

from cdb.core.errors import CdbError
from cdb.core.metrics import COLLAPSE_RULE
from cdb.report.runs import NoValue, RunRecord, collapsed, get
from cdb.rundir import settings_of

FORMATS = {"md": "md", "csv": "csv", "json": "json", "latex": "tex"}  # --format value: file extension

Cell = tuple[str, str, float]


@dataclass
class TableSpec:
    name: str
    title: str
    rows: list[str]
    cols: list[str]
    cells: Callable[[RunRecord], Iterable[Cell]]   # (row, col, value) contributions of one run
    paper: dict[str, list[str]] = field(default_factory=dict)
    value_name: str = "test error (%)"
    notes: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=lambda: ["trainer.unit", "trainer.length", "trainer.lr",
                                                         "trainer.milestones", "trainer.eval_every",
                                                         "trainer.select", "loss.normalize", "loss.reduction"])
    empty: str = "no run"                    # what a cell without runs says
    flag_collapsed: bool = True              # count collapsed runs (cdb.core.metrics.COLLAPSE_RULE)


# ---- reading run directories -------------------------------------------------------------------------


def fmt_num(x: float) -> str:
    """0.9 -> '0.9', 1.0 -> '1', 1.5 -> '1.5' (labels as the paper prints them)."""
    return f"{x:g}"


# ---- runs -> frames ------------------------------------------------------------------------------------
def contributions(spec: TableSpec, runs: list[RunRecord]) -> pd.DataFrame:
    """One row per (run, cell) contribution: row, col, value (NaN for a diverged run), collapsed, diverged, path,
    run (the RunRecord itself)."""
    records = []
    for run in runs:
        try:
            cells = list(spec.cells(replace(run, metrics=NoValue(status="diverged")) if run.diverged else run))
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
    return same_settings_per_cell(pd.DataFrame(records, columns=["row", "col", "value", "collapsed", "diverged",
                                                                 "path", "run"]))


def same_settings_per_cell(contrib: pd.DataFrame) -> pd.DataFrame:
    """A cell averages runs that differ in their seed only: runs of other settings in one cell are refused in one
    line naming the first differing setting, and a run of the same settings and seed (a copy) counts once."""
    keep = []
    for (row, col), group in contrib.groupby(["row", "col"], sort=False):
        first = group["run"].iloc[0]
        ref = {k: v for k, v in settings_of(first.cfg).items() if k != "seed"}
        seen: set = set()
        for i, run in zip(group.index, group["run"]):
            mine = {k: v for k, v in settings_of(run.cfg).items() if k != "seed"}
            if mine != ref:
                key = sorted(k for k in set(mine) | set(ref) if mine.get(k) != ref.get(k))[0]
                raise CdbError(f"cell ({row}, {col}) would average runs whose settings differ: {key} is "
                               f"{ref.get(key)!r} in {first.path} and {mine.get(key)!r} in {run.path}; give --runs "
                               "the runs of one setting (or compare them with `cdb-table compare`)")
            seed = get(run.cfg, "seed")
            if seed in seen:
                continue
            seen.add(seed)
            keep.append(i)
    return contrib.loc[sorted(keep)] if len(keep) != len(contrib) else contrib


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


def grid(spec: TableSpec, cells: pd.DataFrame, markdown: bool = False) -> pd.DataFrame:
    """The table as printed: one row per table row, one column per table column, cell texts (with `markdown`, a
    `|` in a label or cell is escaped so that it cannot split a Markdown column)."""
    text = cells.assign(text=[cell_text(spec, c) for c in cells.itertuples()])
    out = text.pivot(index="row", columns="col", values="text").reindex(index=spec.rows, columns=spec.cols)
    out.index.name, out.columns.name = None, None
    if markdown:
        esc = lambda v: v.replace("|", "\\|") if isinstance(v, str) else v  # noqa: E731
        out = out.map(esc).rename(index=esc, columns=esc)
    return out


def settings_summary(spec: TableSpec, contrib: pd.DataFrame) -> list[str]:
    """One line per setting: its value(s) over the runs behind the table, and which rows used which
    value when the rows differ (e.g. a method run at its own learning rate)."""
    rows: dict[str, list[RunRecord]] = {}
    for row, run in zip(contrib["row"], contrib["run"]):
        rows.setdefault(row, []).append(run)
    # contrib holds a run once per column it fills (and per checkpoint it is read at): each run counts once
    runs = list({r.path: r for rs in rows.values() for r in rs}.values())
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
    machines = machines_line(runs)
    if machines:
        lines.append(machines)
    return lines


def machine_text(session: dict) -> str:
    """One `trained_on` entry (cdb.train.machine) as a table names it: what decides a run's last bits."""
    where = (f"{session.get('gpu', 'GPU')}" if session.get("device") == "cuda" else
             f"CPU {session.get('cpu', '?')} ({session.get('cpu_capability', '?')} kernels), "
             f"{session.get('threads', '?')} thread{'s' * (session.get('threads') != 1)}")
    return f"torch {session.get('torch', '?')}, {where}"


def machines_line(runs: list[RunRecord]) -> str:
    """'- trained on: M (k runs); ...': the machines behind the runs (metrics.json `trained_on`), so a reader
    knows which runs may differ from a rerun in the last bits; runs written before cdb recorded it are counted as
    not recorded, and a run trained in sessions on different machines is named with all of them."""
    counts: dict[str, int] = {}
    for run in runs:
        sessions = run.metrics.get("trained_on") or []
        names = list(dict.fromkeys(machine_text(t) for t in sessions if isinstance(t, dict)))
        key = ("not recorded" if not names else names[0] if len(names) == 1 else
               "several machines in one run: " + " + ".join(names))
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return ""
    return "- trained on: " + "; ".join(f"{k} ({n} run{'s' * (n != 1)})" for k, n in counts.items())


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
                  f" \"k collapsed\" = k of those runs collapsed: {COLLAPSE_RULE} (of the checkpoint the run "
                  "reports)." if spec.flag_collapsed else "") + " \"d diverged\" = d more runs of that cell "
              "stopped on a non-finite training loss: they have no value and are not in n.", "",
              grid(spec, self.cells, markdown=True).to_markdown(tablefmt="github", disable_numparse=True), ""]
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
            md += [grid(spec, self.cells, markdown=True).reindex(columns=[c.replace("|", "\\|") for c in cols])
                   .to_markdown(tablefmt="github", disable_numparse=True), ""]
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
