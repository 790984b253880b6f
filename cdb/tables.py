"""Run directories in, paper-style tables out (Markdown + CSV), each cell beside the paper's number.

A table is a TableSpec: which runs belong to which (row, column) cell and what value they contribute.
Cells aggregate every matching run as mean ± std (population std, ddof=0) with the run count; a cell with
no run says so and is never filled otherwise. Tables are built only from files in run directories
(config.yaml + metrics.json), so every number traces back to its runs.
"""
from __future__ import annotations

import argparse
import csv
import io as _io
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import yaml

from . import paper
from .errors import CdbError
from .train.io import atomic_write_text, read_json


@dataclass
class Run:
    path: Path
    cfg: dict
    metrics: dict


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


def load_runs(root: str | Path) -> list[Run]:
    """Every finished run (metrics.json with status complete, plus config.yaml) under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise CdbError(f"--runs {str(root)!r} is not a directory of run directories")
    runs = []
    for m in sorted(root.rglob("metrics.json")):
        c = m.parent / "config.yaml"
        if not c.exists():
            continue
        metrics = read_json(m)
        if metrics.get("status") == "complete":
            runs.append(Run(m.parent, yaml.safe_load(c.read_text()), metrics))
    return runs


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


def aggregate(spec: TableSpec, runs: list[Run]) -> dict[tuple[str, str], dict]:
    values: dict[tuple[str, str], list[float]] = {}
    members: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        for row, col, v in spec.cells(run):
            if row in spec.rows and col in spec.cols:
                values.setdefault((row, col), []).append(float(v))
                members.setdefault((row, col), []).append(run)
    out = {}
    for key, vs in values.items():
        mean = sum(vs) / len(vs)
        std = math.sqrt(sum((v - mean) ** 2 for v in vs) / len(vs))
        out[key] = {"mean": mean, "std": std, "n": len(vs), "runs": members[key],
                    "collapsed": sum(collapsed(r) for r in members[key])}
    return out


def paper_value(spec: TableSpec, row: str, col: str) -> str:
    vals = spec.paper.get(row)
    if not vals:
        return ""
    return vals[spec.cols.index(col)] if isinstance(vals, list) else str(vals)


def settings_summary(spec: TableSpec, agg: dict[tuple[str, str], dict]) -> list[str]:
    """One line per setting: its value(s) over the runs behind the table, and which rows used which
    value when the rows differ (e.g. a method run at its own learning rate)."""
    rows: dict[str, list[Run]] = {}
    for (row, _), cell in agg.items():
        rows.setdefault(row, []).extend(cell["runs"])
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


def render(spec: TableSpec, runs: list[Run], command: str, runs_dir: str) -> tuple[str, str]:
    agg = aggregate(spec, runs)
    used = {r.path for cell in agg.values() for r in cell["runs"]}
    md = [f"# {spec.title}", ""]
    md.append(f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `cdb-table {spec.name}` "
              f"from {len(used)} finished runs under `{runs_dir}`.")
    md.append("")
    md.append(f"Command: `{command}`" if command else "Command: (not recorded)")
    md.append("")
    md.append(f"Each cell: ours, {spec.value_name}, mean ± std over n runs (n in brackets) · the paper's value. "
              "\"no run\" = no finished run for that cell; nothing is filled in otherwise. \"k collapsed\" = k of "
              "those runs ended predicting (almost) one class: some class below 1% test accuracy.")
    md.append("")
    md.append("| | " + " | ".join(spec.cols) + " |")
    md.append("|---|" + "---|" * len(spec.cols))
    for row in spec.rows:
        cells = []
        for col in spec.cols:
            c = agg.get((row, col))
            ours = "no run"
            if c:
                flag = f", {c['collapsed']} collapsed" if c["collapsed"] else ""
                ours = f"{c['mean']:.2f} ± {c['std']:.2f} ({c['n']}{flag})"
            pv = paper_value(spec, row, col)
            cells.append(f"{ours} · paper {pv}" if pv else ours)
        md.append(f"| {row} | " + " | ".join(cells) + " |")
    md.append("")
    settings = settings_summary(spec, agg)
    if settings:
        md += ["Settings of the runs behind the table:", "", *settings, ""]
    for note in spec.notes:
        md.append(f"- {note}")
    buf = _io.StringIO()
    w = csv.writer(buf)
    w.writerow(["table", "row", "col", "mean", "std", "n", "collapsed", "paper"])
    for row in spec.rows:
        for col in spec.cols:
            c = agg.get((row, col))
            stats = [f"{c['mean']:.4f}", f"{c['std']:.4f}", c["n"], c["collapsed"]] if c else ["", "", 0, 0]
            w.writerow([spec.name, row, col, *stats, paper_value(spec, row, col)])
    return "\n".join(md).rstrip() + "\n", buf.getvalue()


# ---- the tables ------------------------------------------------------------------------------------------
def _mnist_col(run: Run) -> str:
    return fmt_num(float(get(run.cfg, "dataset.majority_ratio")))


def _table2_cells(run: Run):
    if get(run.cfg, "dataset.name") != "mnist_imbalanced" or get(run.cfg, "loss.weighting") != "cdb" \
            or get(run.cfg, "loss.base") != "ce":
        return []
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
# the loss config's label); a run never fills a row of another method.
DAGGER_ROWS = {
    "Focal": "Focal †", "CB": "Class-Balanced †", "Class-Balanced": "Class-Balanced †", "L2RW": "L2RW †",
    "MWN": "Meta-Weight Net †", "Meta-Weight Net": "Meta-Weight Net †", "EQL": "Equalization loss †",
    "LDAM-DRW": "LDAM-DRW †",
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
    if not col or get(run.cfg, "loss.weighting") != "cdb" or get(run.cfg, "loss.base", "ce") != "ce":
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


def build_table(name: str, runs_dir: str | Path, out_dir: str | Path, command: str = "") -> Path:
    if name not in SPECS:
        raise CdbError(f"table {name!r} is not known: one of {sorted(SPECS)}")
    spec = SPECS[name]
    runs = load_runs(runs_dir)
    md, csv_text = render(spec, runs, command, str(runs_dir))
    out = Path(out_dir)
    atomic_write_text(out / f"{name}.md", md)
    atomic_write_text(out / f"{name}.csv", csv_text)
    return out / f"{name}.md"


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="cdb-table", description="Build a paper table from run directories.")
    p.add_argument("name", help=f"one of {sorted(SPECS)}")
    p.add_argument("--runs", required=True, help="folder that holds the run directories (searched recursively)")
    p.add_argument("--out", default="results", help="where NAME.md and NAME.csv go (default: results)")
    p.add_argument("--command", default="", help="the command that produced the runs, recorded in the table")
    args = p.parse_args(argv)
    path = build_table(args.name, args.runs, args.out, args.command)
    print(path.read_text())
