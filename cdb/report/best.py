"""`cdb-table compare --best-of KEY`: of each value of KEY (e.g. loss.label, one tuned study per method), only the
runs of the setting with the highest balanced validation accuracy (cdb.core.metrics.validation_objective, the
objective a tuned study maximises), so a table compares each method at its best trial. No test value is read.
"""
from __future__ import annotations

import math

import yaml

from cdb.core.errors import CdbError
from cdb.core.metrics import validation_objective
from cdb.report.compare import setting
from cdb.report.runs import RunRecord, get

OBJECTIVE = "balanced validation accuracy"


def score(runs: list[RunRecord]) -> float:
    """A setting's objective: the mean over its runs (seeds); NaN when any of them has none (e.g. diverged)."""
    values = [validation_objective(r.metrics) for r in runs]
    return math.nan if any(math.isnan(v) for v in values) else sum(values) / len(values)


def trial_number(runs: list[RunRecord]) -> float:
    """The sweep job number of a setting's first run (.hydra/hydra.yaml: hydra.job.num, Optuna's trial number in a
    tuned study), so that equal objectives go to the earlier trial as Optuna's best trial does; inf when unknown."""
    nums = []
    for r in runs:
        path = r.path / ".hydra" / "hydra.yaml"
        try:
            num = get(yaml.safe_load(path.read_text()) or {}, "hydra.job.num")
        except (OSError, yaml.YAMLError):
            num = None
        nums.append(num if isinstance(num, int) else math.inf)
    return min(nums, default=math.inf)


def best_of(runs: list[RunRecord], key: str, by: str = "override") -> tuple[list[RunRecord], list[str]]:
    """(the runs of each KEY value's best setting, one note per value naming it, its objective and how many settings
    it was chosen from). Equal objectives go to the earlier trial (trial_number), then to the first setting in name
    order; a setting with a failed run is never chosen."""
    missing = [r.path for r in runs if get(r.cfg, key) is None]
    if missing:
        raise CdbError(f"--best-of {key!r}: run {missing[0]} has no setting {key} (e.g. loss.label or loss.name)")
    groups: dict[str, dict[str, list[RunRecord]]] = {}
    for r in runs:
        groups.setdefault(str(get(r.cfg, key)), {}).setdefault(setting(r, by), []).append(r)
    kept, notes = [], []
    for value, settings in sorted(groups.items()):
        scores = {s: score(rs) for s, rs in sorted(settings.items())}
        eligible = {s: v for s, v in scores.items() if not math.isnan(v)}
        failed = len(scores) - len(eligible)
        tail = f" ({failed} failed)" if failed else ""
        if not eligible:
            notes.append(f"{key}={value}: no setting of {len(scores)}{tail} has a {OBJECTIVE}: left out")
            continue
        best = min(eligible, key=lambda s: (-eligible[s], trial_number(settings[s])))  # min: first in name order
        kept += settings[best]
        notes.append(f"{key}={value}: best of {len(scores)} settings{tail} by {OBJECTIVE} "
                     f"({eligible[best]:.2f} %): {best}")
    sizes = {value: len(settings) for value, settings in sorted(groups.items())}
    if len(set(sizes.values())) > 1:  # a fair comparison gives every method the same trial budget
        notes.append("unequal budgets: " + ", ".join(f"{key}={v} {n} settings" for v, n in sizes.items()))
    return kept, notes
