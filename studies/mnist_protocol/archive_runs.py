"""Keep the record of finished runs under results/: each run's config.yaml and metrics.json, the two files a table
is built from (cdb.report.runs.load_runs), copied to the same relative path under --out.

Run directories live in the ignored outputs/ folder, which a new machine does not have; a campaign that spans
sessions (studies/mnist_protocol/protocol_campaign.sh) archives each run as it finishes, so `cdb-table table1 --runs
results/runs/calib_p3` can always rebuild its tables. Machine paths are replaced by the environment variables they
came from (`data_root`, `output_root`, `dataset.root`), so the archive names no machine; a run that is not
finished (no metrics.json, or a status other than complete / diverged) is left out, and an archived run is
rewritten only when its files changed.

    python studies/mnist_protocol/archive_runs.py --runs outputs/calib_p3 --out results/runs/calib_p3
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cdb.rundir import CONFIG, METRICS  # noqa: E402
from cdb.rundir.io import atomic_write_text  # noqa: E402

# the config keys that hold machine paths, and what the archive writes instead
PLACEHOLDERS = {("data_root",): "${oc.env:CDB_DATA_ROOT,data}", ("output_root",): "${oc.env:CDB_OUTPUT_ROOT,outputs}",
                ("dataset", "root"): "${data_root}"}


def scrubbed_config(text: str) -> str:
    cfg = yaml.safe_load(text)
    for keys, placeholder in PLACEHOLDERS.items():
        node = cfg
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and keys[-1] in node:
            node[keys[-1]] = placeholder
    return yaml.safe_dump(cfg, sort_keys=False)


def finished(metrics_path: Path) -> bool:
    try:
        return json.loads(metrics_path.read_text()).get("status") in ("complete", "diverged")
    except (OSError, ValueError):
        return False


def archive(runs: Path, out: Path) -> tuple[int, int]:
    """(runs written, runs already up to date) for every finished run directory under `runs`."""
    written = same = 0
    for metrics in sorted(runs.rglob(METRICS)):
        run = metrics.parent
        if not (run / CONFIG).exists() or not finished(metrics):
            continue
        dest = out / run.relative_to(runs)
        files = {CONFIG: scrubbed_config((run / CONFIG).read_text()), METRICS: metrics.read_text()}
        if all((dest / name).exists() and (dest / name).read_text() == text for name, text in files.items()):
            same += 1
            continue
        dest.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            atomic_write_text(dest / name, text)
        written += 1
    return written, same


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, required=True, help="a folder of run directories (e.g. outputs/calib_p3)")
    ap.add_argument("--out", type=Path, required=True, help="where their records go (e.g. results/runs/calib_p3)")
    args = ap.parse_args()
    if not args.runs.is_dir():
        sys.exit(f"archive_runs: error: --runs {args.runs} is not a directory")
    n, same = archive(args.runs, args.out)
    print(f"archive_runs: {n} run(s) written to {args.out}, {same} already there")
