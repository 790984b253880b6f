"""`cdb-table compare`: the settings of any sweep side by side, e.g. CDB-CE against CE on your own data.

One row per setting: by default the run directory's override name without the seed (runs live in
<output_root>/<name>/<overrides>/seed=<n>), so `cdb-run -m dataset=folder loss=ce,cdb seed='range(5)'` gives
rows `loss=ce` and `loss=cdb` (overrides every row shares go to a note); `--by KEY` groups by a config value
instead (e.g. loss.label). Columns: test error, balanced
accuracy (the mean of the per-class accuracies, metrics.json's `macro_recall`), then the accuracy of each class
(<= 10 classes), the many/medium/few-shot accuracy where metrics.json has them, and the balanced accuracy of the same
checkpoint on the validation split (the number to choose settings by; test numbers are for reporting).

`--select last|best|both` reads the last and/or the best-validation checkpoint of every run from its metrics.json
(`checkpoints.last`, `checkpoints.best`) instead of the one the run reports: trainer.select only says which of the two
a run reports (it is not part of what a run computes, cdb.rundir.RUNTIME_KEYS), so one set of runs gives the rows of
both choices, named `...,trainer.select=last` and `...,trainer.select=best`.
"""
from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import replace
from pathlib import Path

from cdb.core.errors import CdbError
from cdb.core.metrics import run_collapsed, validation_objective
from cdb.report.runs import RunRecord, get
from cdb.rundir import setting_name
from cdb.report.spec import TableSpec

MAX_CLASS_COLUMNS = 10
BASE = {"test error": "error", "balanced accuracy": "macro_recall"}
SHOTS = {"many-shot": "many_accuracy", "medium-shot": "medium_accuracy", "few-shot": "few_accuracy"}
VAL = "val balanced accuracy"
SELECT_CHOICES = ("run", "last", "best", "both")
SETTINGS = ["dataset.name", "model.name", "loss.label", "loss.tau", "loss.tau_rule", "loss.warmup", "loss.floor",
            "trainer.unit", "trainer.length", "trainer.lr", "trainer.sampler", "trainer.select"]


def as_selected(run: RunRecord, which: str) -> RunRecord:
    """The run as it would read with trainer.select=`which` ("last" or "best"): the same training, that checkpoint's
    test metrics and collapse (metrics.json `checkpoints.<which>`), and a config that says trainer.select=<which>
    (the row name says so too: `view_of`). A diverged run stays diverged."""
    cfg = copy.deepcopy(run.cfg)
    cfg.setdefault("trainer", {})["select"] = which
    if run.diverged:
        return replace(run, cfg=cfg, view=which)
    ckpt = (run.metrics.get("checkpoints") or {}).get(which)
    if not isinstance(ckpt, dict) or "test" not in ckpt:
        raise CdbError(f"{run.path}: metrics.json has no {which} checkpoint (checkpoints.{which}), which --select "
                       f"{which} reads; leave that run out of --runs or use --select run")
    metrics = {k: v for k, v in run.metrics.items() if k != "collapsed"}
    metrics.update(selected=which, test=ckpt["test"])
    metrics["collapsed"] = run_collapsed(metrics, which)
    return replace(run, cfg=cfg, metrics=metrics, view=which)


def has_checkpoint(run: RunRecord, which: str) -> bool:
    ckpt = (run.metrics.get("checkpoints") or {}).get(which)
    return run.diverged or (isinstance(ckpt, dict) and "test" in ckpt)


def select_runs(runs: list[RunRecord], select: str = "run", notes: list[str] | None = None) -> list[RunRecord]:
    """--select: the runs as they report themselves (run), or views of their last / best / both checkpoints.

    With both, a run that has only one of the two (a decoupled run, a run whose validation never improved) is read
    at the one it has, and a line appended to `notes` says which runs those are."""
    if select not in SELECT_CHOICES:
        raise CdbError(f"--select {select!r} is not allowed: one of {', '.join(SELECT_CHOICES)}")
    if select == "run":
        return runs
    if select != "both":
        return [as_selected(r, select) for r in runs]
    out, single = [], []
    for r in runs:
        views = [w for w in ("last", "best") if has_checkpoint(r, w)] or ["last"]  # none: as_selected says so
        if len(views) == 1:
            single.append(f"{r.path} ({views[0]})")
        out += [as_selected(r, w) for w in views]
    if single and notes is not None:
        notes.append(f"--select both: {len(single)} run(s) have one checkpoint only and are read at it: "
                     + ", ".join(single))
    return out


def _view_key(run: RunRecord):
    """Runs are told apart by directory and, for --select views of one run, by the checkpoint they read."""
    return run.path, run.view


def setting(run: RunRecord, by: str = "override") -> str:
    """The setting of a run: its override name (the run directory's parent when the run directory is seed=<n>,
    else the loss label; for a decoupled run (cdb-decouple), its source's), or the value of config key `by`; a
    --select view adds trainer.select=<last|best> (in place of a trainer.select the override name had)."""
    which = run.view
    if by == "override":
        source = get(run.cfg, "decouple.source_setting")
        name = str(source) if source is not None else setting_name(run.path, run.cfg)
        if which:
            items = [i for i in _items(name) if not i.startswith("trainer.select=")]
            name = ",".join([*items, f"trainer.select={which}"])
        return name
    value = get(run.cfg, by)
    return f"{by}={value}" + (f",trainer.select={which}" if which and by != "trainer.select" else "")


def row_names(runs: list[RunRecord], by: str = "override") -> tuple[dict[Path, str], list[str]]:
    """({run directory: its row}, the overrides every row shares): short_names of the settings; a decoupled run's row is
    its method ("cRT", "tau-norm (tau=0.7)", "LWS"), after its source's setting when the runs hold several."""
    label, shared = short_names({setting(r, by) for r in runs})
    rows = {}
    for r in runs:
        base, stage2 = label[setting(r, by)], get(r.cfg, "decouple.label") if by == "override" else None
        rows[_view_key(r)] = base if stage2 is None else f"{base} + {stage2}" if len(label) > 1 else str(stage2)
    return rows, shared


def _items(override_name: str) -> list[str]:
    """'a=1,b.c=[1,2],d=x' -> ['a=1', 'b.c=[1,2]', 'd=x']: split at the commas that start a new key=."""
    return re.split(r",(?=[^,=\[\]]+=)", override_name)


def short_names(names: set[str]) -> tuple[dict[str, str], list[str]]:
    """Row labels without the overrides every row shares (e.g. dataset=folder in a loss=ce,cdb sweep), and those
    shared overrides. One setting keeps its full name."""
    if len(names) < 2:
        return {n: n for n in names}, []
    split = {n: _items(n) for n in names}
    shared = set.intersection(*(set(items) for items in split.values()))
    short = {n: ",".join(i for i in items if i not in shared) or n for n, items in split.items()}
    if len(set(short.values())) < len(short):   # never merge two settings
        return {n: n for n in names}, []
    return short, sorted(shared)


def _class_names(runs: list[RunRecord]) -> list[str]:
    """Column names of the per-class accuracies: the runs' class names when they all agree, else indices."""
    sizes = {len(r.metrics.get("test", {}).get("per_class_accuracy") or []) for r in runs}
    if len(sizes) != 1 or not 0 < max(sizes) <= MAX_CLASS_COLUMNS:
        return []
    names = {tuple(map(str, r.metrics.get("class_names") or [])) for r in runs}
    common = names.pop() if len(names) == 1 else ()
    return list(common) if len(common) == max(sizes) else [str(c) for c in range(max(sizes))]


def _keys(cfg: dict, prefix: str = "") -> list[str]:
    """Every dotted key of a run's settings (leaves only)."""
    out = []
    for k, v in cfg.items():
        out += _keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return out


def _has(cfg: dict, dotted: str) -> bool:
    node = cfg
    for k in dotted.split("."):
        if not isinstance(node, dict) or k not in node:
            return False
        node = node[k]
    return True


def val_balanced(run: RunRecord) -> float | None:
    """Balanced validation accuracy (macro recall, %) of the checkpoint the run (or --select view) reports: the
    tuned search's objective (cdb.core.metrics.validation_objective); None when the run does not record it."""
    value = validation_objective(run.metrics)
    return None if math.isnan(value) else value


def compare_spec(runs: list[RunRecord], by: str = "override") -> TableSpec:
    """A TableSpec over exactly these runs (or --select views of them, select_runs): rows = their settings
    (sorted), columns = the metrics they report."""
    if by != "override" and not any(_has(r.cfg, by) for r in runs):
        known = sorted({k for r in runs for k in _keys(r.cfg)})
        raise CdbError(f"--by {by!r} is not a setting of these runs; use override (the default) or one of "
                       f"{', '.join(known)}")
    names = _class_names(runs)
    shots = {col: key for col, key in SHOTS.items() if any(key in r.metrics.get("test", {}) for r in runs)}
    val = any(val_balanced(r) is not None for r in runs if not r.diverged)
    cols = [*BASE, *(f"class {n}" for n in names), *shots, *[VAL] * val]
    row_of, shared = row_names(runs, by)
    thresholds = sorted({json.dumps(r.metrics["test"]["group_thresholds"], sort_keys=True)
                         for r in runs if "group_thresholds" in r.metrics.get("test", {})})

    def cells(run: RunRecord):
        if run.diverged:   # no test values: counted in its row's first column as "d diverged"
            return [(row_of[_view_key(run)], next(iter(BASE)), float("nan"))]
        t, row = run.metrics["test"], row_of[_view_key(run)]
        out = [(row, col, t[key]) for col, key in {**BASE, **shots}.items() if key in t]
        if names:
            out += [(row, f"class {n}", a) for n, a in zip(names, t["per_class_accuracy"])]
        v = val_balanced(run) if val else None
        return out + [(row, VAL, v)] * (v is not None)

    return TableSpec(
        name="compare", title=f"Comparison of {len({r.path for r in runs})} finished runs, by {by}",
        rows=sorted(set(row_of.values())), cols=cols, cells=cells, value_name="%", settings=SETTINGS,
        empty="—", flag_collapsed=bool(names),
        notes=([f"every row also has: {', '.join(shared)}"] if shared else [])
        + ["test error and accuracies of the selected checkpoint (trainer.select) on the test split.",
               "balanced accuracy: the mean over classes of the per-class accuracy (macro recall)."]
        + (["class c: test accuracy of class c."] if names else [])
        + ([f"{', '.join(shots)}: accuracy on classes with many / medium / few training images (see "
            "cdb.core.metrics.shot_groups)."] if shots else [])
        + [f"many/medium/few thresholds of the runs: {'; '.join(thresholds)}"] * bool(thresholds)
        + [f"{VAL}: balanced accuracy of the same checkpoint on the validation split; choose settings by it, not "
           "by the test columns."] * val
        + ["trainer.select=last / best rows: the last / best-validation checkpoint of the same runs (metrics.json "
           "checkpoints.last / .best; trainer.select changes only which one a run reports)."]
        * any(r.view for r in runs)
        + ["\"—\": no run of that setting reports the metric."])
