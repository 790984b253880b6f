"""Reading run directories for reports: one RunRecord per finished run (config.yaml + metrics.json), whether a run
collapsed (by the one rule of cdb.core.metrics) and the definition of a weight flip that tables, figures and scripts
share."""
from __future__ import annotations

import fnmatch
import glob
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml

from cdb.core.errors import CdbError
from cdb.core.metrics import COLLAPSE_BELOW, is_collapsed, run_collapsed  # noqa: F401  (re-exported for scripts)
from cdb.rundir import CONFIG, METRICS, io
from cdb.rundir.names import current_names


@dataclass
class RunRecord:
    path: Path
    cfg: dict
    metrics: dict
    view: str | None = None   # cdb-table compare --select: the checkpoint ("last", "best") this record reads

    @property
    def diverged(self) -> bool:
        """Training stopped on a non-finite loss (metrics.json status "diverged"): no test value, but counted."""
        return self.metrics.get("status") == "diverged"


class NoValue(dict):
    """The metrics of a diverged run as a table cell function sees them: every value is NaN, so the cell the
    run belongs to (from its config) is found without a number to average."""

    def __missing__(self, key):
        return NoValue() if key == "test" else math.nan


def read_json(path: str | Path):
    """A JSON file's content; a file that is not JSON is a one-line CdbError naming it (no traceback)."""
    return io.read_json(path, "Repair it or move that run directory out of --runs")


def read_yaml(path: str | Path):
    """A YAML file's content, with the same one-line error as read_json."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except (yaml.YAMLError, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0]
        raise CdbError(f"{path} cannot be read as YAML ({reason}): repair it or move that run directory "
                       "out of --runs") from None


def run_dirs(runs: str | Path | Sequence[str | Path], exclude: Sequence[str] = ()) -> list[Path]:
    """Directories holding a metrics.json under `runs`: one or more folders or globs (searched recursively), less
    those whose path matches a pattern of `exclude` (fnmatch, where `*` also matches `/`)."""
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
    return sorted({m.parent for root in roots for m in root.rglob(METRICS)
                   if not any(fnmatch.fnmatchcase(str(m.parent), pattern) for pattern in exclude)})


def load_runs(runs: str | Path | Sequence[str | Path], exclude: Sequence[str] = ()) -> list[RunRecord]:
    """Every finished run (metrics.json with status complete or diverged, plus config.yaml) under `runs`, less the
    run directories `exclude` matches (run_dirs); each config with its settings under their configs/ names
    (cdb.rundir.names)."""
    out = []
    for d in run_dirs(runs, exclude):
        if not (d / CONFIG).exists():
            print(f"cdb-table: warning: {d / CONFIG} is missing: that run is left out (its settings are unknown)",
                  file=sys.stderr)
            continue
        metrics = read_json(d / METRICS)
        if isinstance(metrics, dict) and metrics.get("status") in ("complete", "diverged"):
            out.append(RunRecord(d, current_names(read_yaml(d / CONFIG)), metrics))
    return out


def get(d: dict, dotted: str, default=None):
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def collapsed(run: RunRecord) -> bool:
    """Whether the run collapsed: cdb.core.metrics.COLLAPSE_RULE on its reported (selected) checkpoint."""
    return bool(run_collapsed(run.metrics))


def weight_flips(rows: list[dict]) -> int:
    """How often the class with the largest weight changes between consecutive validations (log.jsonl rows with
    "weights"); a validation whose largest weight is shared by several classes is skipped."""
    tops = []
    for r in rows:
        w = r.get("weights") or []
        top = max(w, default=None)
        if top is not None and w.count(top) == 1:
            tops.append(w.index(top))
    return sum(a != b for a, b in zip(tops, tops[1:]))
