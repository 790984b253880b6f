"""`cdb-table compare`: the settings of any sweep side by side, e.g. CDB-CE against CE on your own data.

One row per setting: by default the run directory's override name without the seed (runs live in
<output_root>/<name>/<overrides>/seed=<n>), so `cdb-run -m dataset=folder loss=ce,cdb seed='range(5)'` gives
rows `loss=ce` and `loss=cdb` (overrides every row shares go to a note); `--by KEY` groups by a config value
instead (e.g. loss.label). Columns: test error, balanced
accuracy (the mean of the per-class accuracies, metrics.json's `macro_recall`), then the accuracy of each class
(<= 10 classes) and the many/medium/few-shot accuracy where metrics.json has them.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from cdb.core.errors import CdbError
from cdb.report.runs import RunRecord, get
from cdb.rundir import setting_name
from cdb.report.spec import TableSpec

MAX_CLASS_COLUMNS = 10
BASE = {"test error": "error", "balanced accuracy": "macro_recall"}
SHOTS = {"many-shot": "many_accuracy", "medium-shot": "medium_accuracy", "few-shot": "few_accuracy"}
SETTINGS = ["dataset.name", "model.name", "loss.label", "loss.tau", "trainer.unit", "trainer.length",
            "trainer.lr", "trainer.sampler", "trainer.select"]


def setting(run: RunRecord, by: str = "override") -> str:
    """The setting of a run: its override name (the run directory's parent when the run directory is seed=<n>,
    else the loss label; for a decoupled run (cdb-decouple), its source's), or the value of config key `by`."""
    if by == "override":
        source = get(run.cfg, "decouple.source_setting")
        return str(source) if source is not None else setting_name(run.path, run.cfg)
    value = get(run.cfg, by)
    return f"{by}={value}"


def row_names(runs: list[RunRecord], by: str = "override") -> tuple[dict[Path, str], list[str]]:
    """({run directory: its row}, the overrides every row shares): short_names of the settings; a decoupled run's row is
    its method ("cRT", "tau-norm (tau=0.7)", "LWS"), after its source's setting when the runs hold several."""
    label, shared = short_names({setting(r, by) for r in runs})
    rows = {}
    for r in runs:
        base, stage2 = label[setting(r, by)], get(r.cfg, "decouple.label") if by == "override" else None
        rows[r.path] = base if stage2 is None else f"{base} + {stage2}" if len(label) > 1 else str(stage2)
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


def compare_spec(runs: list[RunRecord], by: str = "override") -> TableSpec:
    """A TableSpec over exactly these runs: rows = their settings (sorted), columns = the metrics they report."""
    if by != "override" and not any(_has(r.cfg, by) for r in runs):
        known = sorted({k for r in runs for k in _keys(r.cfg)})
        raise CdbError(f"--by {by!r} is not a setting of these runs; use override (the default) or one of "
                       f"{', '.join(known)}")
    names = _class_names(runs)
    shots = {col: key for col, key in SHOTS.items() if any(key in r.metrics.get("test", {}) for r in runs)}
    cols = [*BASE, *(f"class {n}" for n in names), *shots]
    row_of, shared = row_names(runs, by)
    thresholds = sorted({json.dumps(r.metrics["test"]["group_thresholds"], sort_keys=True)
                         for r in runs if "group_thresholds" in r.metrics.get("test", {})})

    def cells(run: RunRecord):
        if run.diverged:   # no test values: counted in its row's first column as "d diverged"
            return [(row_of[run.path], next(iter(BASE)), float("nan"))]
        t, row = run.metrics["test"], row_of[run.path]
        out = [(row, col, t[key]) for col, key in {**BASE, **shots}.items() if key in t]
        if names:
            out += [(row, f"class {n}", a) for n, a in zip(names, t["per_class_accuracy"])]
        return out

    return TableSpec(
        name="compare", title=f"Comparison of {len(runs)} finished runs, by {by}",
        rows=sorted(set(row_of.values())), cols=cols, cells=cells, value_name="%", settings=SETTINGS,
        empty="—", flag_collapsed=bool(names),
        notes=([f"every row also has: {', '.join(shared)}"] if shared else [])
        + ["test error and accuracies of the selected checkpoint (trainer.select) on the test split.",
               "balanced accuracy: the mean over classes of the per-class accuracy (macro recall)."]
        + (["class c: test accuracy of class c."] if names else [])
        + ([f"{', '.join(shots)}: accuracy on classes with many / medium / few training images (see "
            "cdb.core.metrics.shot_groups)."] if shots else [])
        + [f"many/medium/few thresholds of the runs: {'; '.join(thresholds)}"] * bool(thresholds)
        + ["\"—\": no run of that setting reports the metric."])
