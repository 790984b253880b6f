"""The paper's tables as TableSpecs (which runs fill which cell of Tables 1-7), and building a table from run
directories (cdb-table). The bookkeeping (contributions, mean ± std per cell, rendering) is cdb.report.spec."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from cdb.core.errors import CdbError
from cdb.report import paper
from cdb.report.best import best_of as pick
from cdb.report.compare import compare_spec, select_runs
from cdb.report.runs import RunRecord, get, load_runs
from cdb.report.spec import FORMATS, Table, TableSpec, aggregate, contributions, fmt_num
from cdb.rundir.io import atomic_write_text, check_out_dir

def _mnist_col(run: RunRecord) -> str:
    return fmt_num(float(get(run.cfg, "dataset.majority_ratio")))


def _table2_cells(run: RunRecord):
    if get(run.cfg, "dataset.name") != "mnist_imbalanced" or get(run.cfg, "loss.label") != "CDB-CE":
        return []   # the paper's CDB-CE only (a stabilised variant has a label of its own)
    tau = get(run.cfg, "loss.tau")
    row = "dynamic" if tau == "dynamic" else fmt_num(float(tau))
    return [(row, _mnist_col(run), run.metrics["test"]["error"])]


def _table1_cells(run: RunRecord):
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
# The paper trains LeNet-5; the MNIST default (protocol P3, docs/protocol.md) is Ren et al.'s network, so the
# MNIST tables name the network, the input scaling and every optimiser setting of the runs behind them.
MNIST_SETTINGS = ["model.name", "dataset.normalize", "trainer.unit", "trainer.length", "trainer.batch_size",
                  "trainer.lr", "trainer.momentum", "trainer.weight_decay", "trainer.milestones", "trainer.gamma",
                  "trainer.eval_every", "trainer.select"]
LT_SETTINGS = ["dataset.split", "dataset.val_per_class", "trainer.length", "trainer.batch_size", "trainer.lr",
               "trainer.schedule", "trainer.milestones", "trainer.gamma", "trainer.lr_warmup", "trainer.select",
               "loss.tau_rule", "loss.normalize", "loss.reduction"]


def _is_dynamic_cdb(run: RunRecord) -> bool:
    return get(run.cfg, "loss.weighting") == "cdb" and get(run.cfg, "loss.tau") == "dynamic"


def _cifar100_col(run: RunRecord) -> str | None:
    if get(run.cfg, "dataset.name") != "cifar_lt" or int(get(run.cfg, "dataset.classes", 100)) != 100:
        return None
    col = fmt_num(float(get(run.cfg, "dataset.imbalance")))
    return col if col in paper.IMBALANCES else None


def _method_row(run: RunRecord, own: dict[str, str]) -> str | None:
    """Table row of a run's method: `own` maps labels of rows the paper ran itself; the rest are † rows."""
    label = get(run.cfg, "loss.label")
    if label == "CDB-CE":
        return own.get(label) if _is_dynamic_cdb(run) else None  # the paper's CDB-CE rows use dynamic tau
    return own.get(label) or DAGGER_ROWS.get(label)


def _table3_cells(run: RunRecord):
    col = _cifar100_col(run)
    row = _method_row(run, {"CDB-CE": "CDB-CE"}) if col else None
    return [(row, col, run.metrics["test"]["accuracy"])] if row else []


def _table4_cells(run: RunRecord):
    col = _cifar100_col(run)
    if not col or get(run.cfg, "loss.label") != "CDB-CE":   # the paper's CDB-CE, not a stabilised variant
        return []
    tau = get(run.cfg, "loss.tau")
    return [("dynamic" if tau == "dynamic" else fmt_num(float(tau)), col, run.metrics["test"]["accuracy"])]


TABLE5_COLUMNS = ["Top-1", "Many", "Medium", "Few"]


def _table5_cells(run: RunRecord):
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
    def cells(run: RunRecord):
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
        title="Table 1: test error (%) on imbalanced MNIST 4/9, by majority class ratio",
        rows=list(paper.TABLE1), cols=paper.RATIOS, cells=_table1_cells, paper=paper.TABLE1,
        settings=MNIST_SETTINGS + ["loss.normalize", "loss.reduction"],
        notes=["CDB-CE uses the dynamically updated tau (paper eq. 3-4), as in the paper's Table 1."]),
    "table2": TableSpec(
        name="table2",
        title="Table 2: test error (%) of CDB-CE on imbalanced MNIST 4/9, by tau and majority ratio",
        rows=list(paper.TABLE2), cols=paper.RATIOS, cells=_table2_cells, paper=paper.TABLE2,
        settings=MNIST_SETTINGS + ["loss.tau_rule", "loss.normalize", "loss.reduction", "loss.floor", "loss.ema",
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
               "implement OLTR, and its decoupled second stage (cdb-decouple: cRT, tau-norm, LWS) fills no row "
               "here, so those rows stay empty.",
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
               notes: Sequence[str] = (), best_of: str | None = None, select: str = "run",
               exclude: Sequence[str] = ()) -> Table:
    """Build table `name` (a paper table, or `compare`) from the finished runs under `runs`; with `beside`, the
    same table from those runs (another profile, e.g. the paper's full schedule) follows it; `notes` are added
    to the spec's notes under the table. Compare only: `select`, the checkpoint(s) read (cdb.report.compare);
    best_of, keep each value's best setting by validation (cdb.report.best). `exclude`: run-directory path patterns
    left out of `runs` (cdb.report.runs.run_dirs)."""
    loaded = load_runs(runs, exclude)
    where = ", ".join(map(str, [runs] if isinstance(runs, (str, Path)) else runs))
    if exclude:
        where += " except " + ", ".join(exclude)
    if select != "run" and name != "compare":
        raise CdbError(f"--select {select} is for `cdb-table compare` only; a paper table reads the checkpoint "
                       "each run reports (trainer.select)")
    if name == "compare":
        if not loaded:   # a paper table is still written, with "no run" cells; a comparison of nothing is not
            raise CdbError(f"--runs {where!r} holds no finished run (metrics.json with status complete)")
        single: list[str] = []
        loaded = select_runs(loaded, select, single)
        chosen = []
        if best_of:
            loaded, chosen = pick(loaded, best_of, by)
            if not loaded:
                raise CdbError(f"--runs {where!r} holds no finished setting with a balanced validation accuracy")
        spec = compare_spec(loaded, by)
        spec = replace(spec, notes=[*chosen, *single, *spec.notes])
    elif best_of:
        raise CdbError(f"--best-of is for `cdb-table compare`, not table {name!r}")
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
                notes: Sequence[str] = (), best_of: str | None = None, select: str = "run",
                exclude: Sequence[str] = ()) -> list[Path]:
    """Write out_dir/NAME.<ext> in each format; returns the paths written, in the order of `formats`."""
    check_out_dir(out_dir)
    table = make_table(name, runs_dir, command, by, beside, beside_command, notes, best_of=best_of, select=select,
                       exclude=exclude)
    texts = {fmt: table.text(fmt) for fmt in formats}   # every format renders before any file is written
    paths = [Path(out_dir) / f"{name}.{FORMATS[fmt]}" for fmt in texts]
    for path, text in zip(paths, texts.values()):
        atomic_write_text(path, text)
    return paths
