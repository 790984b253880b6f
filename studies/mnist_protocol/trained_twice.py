"""Do the campaign's runs repeat? Runs whose directories were lost (a new machine has no outputs/) are trained again
for the tables; this script sets each one's new test error beside the one the calibration table recorded the first
time, and writes results/protocol_repeats.{md,csv}.

  .venv/bin/python studies/mnist_protocol/trained_twice.py --first-rev b881eed --runs results/runs --out results

`--first-rev`: the commit whose results/protocol_calibration.csv holds the first trainings. Only run records archived
after that commit (absent from its results/runs/) count as trained again; a record that was already there is the
run the table was built from, and comparing it with itself would prove nothing.
"""
from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from cdb.rundir.io import atomic_write_text  # noqa: E402
from protocol_calibration import run_rows  # noqa: E402  (scripts/ is on the path of a script run from it)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout


def compare(first: pd.DataFrame, runs_root: Path, archived_before: set[str]) -> pd.DataFrame:
    """One row per run record under `runs_root` (read as the calibration table reads it) that `first` (a calibration
    table) also holds and that was not archived before (its source, relative to runs_root, not in `archived_before`)."""
    again = run_rows(runs_root, None)
    cols = ["method", "ratio", "seed", "first", "again", "difference", "source"]
    if again.empty:
        return pd.DataFrame(columns=[*cols, "identical"])
    again = again[~again["diverged"] & ~again["source"].isin(archived_before)]
    out = again.merge(first[["source", "error"]].rename(columns={"error": "first"}), on="source")
    out = out.rename(columns={"error": "again"})
    out["difference"] = (out["again"] - out["first"]).round(4) + 0.0   # + 0.0: no "-0.0000"
    out["identical"] = out["difference"] == 0
    return out[[*cols, "identical"]].sort_values(["ratio", "method", "seed"], ignore_index=True)


def markdown(t: pd.DataFrame, command: str, rev: str) -> str:
    lines = ["# Runs trained twice", "", f"Made by `{command}`.", "",
             f"Test error (%) of the last checkpoint: *first*, as results/protocol_calibration.csv recorded it at "
             f"commit {rev} (its run directory was lost since); *again*, the same run (same code, commit a89e450, "
             "same settings and seed) trained again in a later session; its record is in results/runs/ (`source`, "
             "in the .csv). One test image is 0.0625 points (1600 test images).", "",
             f"**{int(t['identical'].sum())} of {len(t)} runs repeated their test error exactly**"
             + (f"; the largest difference is {t['difference'].abs().max():.2f} points." if len(t) else "."), "",
             t.drop(columns="source").to_markdown(index=False, floatfmt=".4f") if len(t)
             else "(no run was trained twice)", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--first-rev", required=True, help="commit whose results/protocol_calibration.csv is the first "
                                                       "training")
    ap.add_argument("--runs", default="results/runs", help="the archived run records")
    ap.add_argument("--out", default="results")
    ap.add_argument("--command", default=None)
    args = ap.parse_args()
    first = pd.read_csv(io.StringIO(git("show", f"{args.first_rev}:results/protocol_calibration.csv")))
    runs_root = Path(args.runs)
    listed = git("ls-tree", "-r", "--name-only", args.first_rev, "--", "results/runs").splitlines()
    archived_before = {str(Path(p).parent.relative_to("results/runs")) for p in listed if p.endswith("metrics.json")}
    t = compare(first, runs_root, archived_before)
    command = args.command or "studies/mnist_protocol/trained_twice.py " + " ".join(sys.argv[1:])
    out = Path(args.out)
    atomic_write_text(out / "protocol_repeats.md", markdown(t, command, args.first_rev))
    atomic_write_text(out / "protocol_repeats.csv", t.to_csv(index=False, float_format="%.4f"))
    print(f"{int(t['identical'].sum())} of {len(t)} runs trained twice repeated their test error exactly; "
          f"wrote {out / 'protocol_repeats.md'} and .csv")


if __name__ == "__main__":
    main()
