"""Measure which schedule and settings keep CDB-CE stable on imbalanced MNIST 4/9 (CDB-CE collapsing).

Runs a grid of named settings x seeds through the same code path as `cdb-run` and writes
results/mnist_stability.md and .csv (pandas; the .md starts with mean ± std per setting and ratio): test
error of the last and best-validation checkpoints, minority-class test accuracy, whether the last checkpoint
collapsed (cdb.core.metrics.COLLAPSE_RULE), and how often the class with the largest weight flipped between
validations.

    python studies/mnist_stability/mnist_stability.py --seeds 0 1 --ratio 0.99 [--only NAME ...] [--jobs 2]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

# LeNet-5's recipe (protocol P1 of docs/protocol.md, configs/protocol/p1.yaml) in steps: what the committed
# results/mnist_stability.* trained
QUICK = ["protocol=p1", "trainer.unit=step", "trainer.length=2000", "trainer.lr=0.01", "trainer.milestones=[1500]"]
GRID: dict[str, list[str]] = {
    "ce": ["loss=ce", *QUICK, "trainer.eval_every=50"],
    "cdb_literal": ["loss=cdb", *QUICK, "trainer.eval_every=50"],
    "cdb_literal_mean": ["loss=cdb", "loss.normalize=mean", *QUICK, "trainer.eval_every=50"],
    "cdb_every10": ["loss=cdb", *QUICK, "trainer.eval_every=10"],
    "cdb_every1": ["loss=cdb", *QUICK, "trainer.eval_every=1"],
    "cdb_every1_mean": ["loss=cdb", "loss.normalize=mean", *QUICK, "trainer.eval_every=1"],
    "cdb_lr1e-3_every1": ["loss=cdb", "trainer.unit=step", "trainer.length=2000", "trainer.lr=0.001",
                          "trainer.milestones=[1500]", "trainer.eval_every=1"],
    "cdb_floor0.05": ["loss=cdb", "loss.floor=0.05", *QUICK, "trainer.eval_every=50"],
    "cdb_ema0.9": ["loss=cdb", "loss.ema=0.9", *QUICK, "trainer.eval_every=50"],
    "cdb_warmup10": ["loss=cdb", "loss.warmup=10", *QUICK, "trainer.eval_every=50"],
    "cdb_wmean": ["loss=cdb", "loss.reduction=weighted_mean", *QUICK, "trainer.eval_every=50"],
    "cdb_wmean_every10": ["loss=cdb", "loss.reduction=weighted_mean", *QUICK, "trainer.eval_every=10"],
    "cdb_wmean_ema0.9": ["loss=cdb", "loss.reduction=weighted_mean", "loss.ema=0.9", *QUICK,
                         "trainer.eval_every=50"],
    "cdb_wmean_warmup10": ["loss=cdb", "loss.reduction=weighted_mean", "loss.warmup=10", *QUICK,
                           "trainer.eval_every=50"],
    "cdb_tau1_wmean": ["loss=cdb", "loss.tau=1", "loss.reduction=weighted_mean", *QUICK, "trainer.eval_every=50"],
    "cdb_every5_mean": ["loss=cdb", "loss.normalize=mean", *QUICK, "trainer.eval_every=5"],
    "cdb_every10_mean_ema0.9": ["loss=cdb", "loss.normalize=mean", "loss.ema=0.9", *QUICK, "trainer.eval_every=10"],
    "cdb_every1_wmean": ["loss=cdb", "loss.reduction=weighted_mean", *QUICK, "trainer.eval_every=1"],
    "cdb_warmup10_mean": ["loss=cdb", "loss.warmup=10", "loss.normalize=mean", *QUICK, "trainer.eval_every=50"],
    "cdb_warmup20_mean": ["loss=cdb", "loss.warmup=20", "loss.normalize=mean", *QUICK, "trainer.eval_every=50"],
    "cdb_warmup10_mean_floor0.05": ["loss=cdb", "loss.warmup=10", "loss.normalize=mean", "loss.floor=0.05", *QUICK,
                                    "trainer.eval_every=50"],
    "cdb_warmup20_mean_floor0.05": ["loss=cdb", "loss.warmup=20", "loss.normalize=mean", "loss.floor=0.05", *QUICK,
                                    "trainer.eval_every=50"],
    "cdb_mean_floor0.05": ["loss=cdb", "loss.normalize=mean", "loss.floor=0.05", *QUICK, "trainer.eval_every=50"],
    "cdb_quick_minw0.1": ["loss=cdb", "loss.warmup=10", "loss.normalize=mean", "loss.min_weight=0.1", *QUICK,
                          "trainer.eval_every=50"],
    "cdb_quick_minw0.1_tau5": ["loss=cdb", "loss.tau=5", "loss.warmup=10", "loss.normalize=mean",
                               "loss.min_weight=0.1", *QUICK, "trainer.eval_every=50"],
    "cdb_quick_minw0.1_tau7": ["loss=cdb", "loss.tau=7", "loss.warmup=10", "loss.normalize=mean",
                               "loss.min_weight=0.1", *QUICK, "trainer.eval_every=50"],
    "cdb_paper_epochs": ["loss=cdb", "trainer.unit=epoch", "trainer.length=200", "trainer.lr=0.001",
                         "trainer.milestones=[150]", "trainer.eval_every=1"],
    "ce_paper_epochs": ["loss=ce", "trainer.unit=epoch", "trainer.length=200", "trainer.lr=0.001",
                        "trainer.milestones=[150]", "trainer.eval_every=1"],
}


def run_one(args: tuple[str, list[str], int, float, str]) -> dict:
    name, overrides, seed, ratio, out_root = args
    import torch
    from hydra import compose, initialize_config_dir

    from cdb.build import train_from_config
    from cdb.config import config_dir
    from cdb.core.metrics import run_collapsed
    from cdb.report.runs import weight_flips
    from cdb.rundir.io import read_jsonl

    torch.set_num_threads(1)
    ov = [*overrides, f"seed={seed}", f"dataset.majority_ratio={ratio}", "trainer.progress=false"]
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=ov)
    run_dir = Path(out_root) / name / f"r={ratio}" / f"seed={seed}"
    t0 = time.time()
    done = (run_dir / "metrics.json").exists()
    m = json.loads((run_dir / "metrics.json").read_text()) if done else train_from_config(cfg, run_dir)
    rows = read_jsonl(run_dir / "log.jsonl")
    assert rows, f"{run_dir} has no log"
    flips = weight_flips(rows)
    last, best = m["checkpoints"]["last"]["test"], m["checkpoints"]["best"]["test"]
    return {"setting": name, "ratio": ratio, "seed": seed, "overrides": " ".join(overrides),
            "last_error": last["error"], "best_error": best["error"],
            "last_minority_acc": last["per_class_accuracy"][0], "best_minority_acc": best["per_class_accuracy"][0],
            "collapsed": bool(run_collapsed(m, "last")), "weight_flips": flips, "validations": len(rows),
            "seconds": m.get("train_wall_time_s") if done else round(time.time() - t0, 1), "run_dir": str(run_dir.relative_to(out_root))}


KEY = ["setting", "ratio", "seed"]   # one CSV row per run: a rerun replaces its earlier row


def merge_rows(csv_path: Path, rows: list[dict]) -> pd.DataFrame:
    """Earlier invocations' rows from csv_path (minus those re-run now), then this invocation's rows."""
    new = pd.DataFrame(rows)
    if not csv_path.exists():
        return new
    old = pd.read_csv(csv_path, keep_default_na=False)
    return pd.concat([old, new], ignore_index=True).drop_duplicates(KEY, keep="last").reset_index(drop=True)


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per setting and ratio: mean ± std (population, ddof=0) of the last / best-validation test error over the
    seeds, the run count and how many runs collapsed."""
    g = runs.assign(collapsed=runs["collapsed"].astype(str) == "True").groupby(["setting", "ratio"], sort=False)
    out = pd.DataFrame({"n": g.size(), "collapsed": g["collapsed"].sum()})
    for col, name in (("last_error", "last err %"), ("best_error", "best-val err %")):
        mean, std = g[col].mean(), g[col].std(ddof=0)
        out[name] = [f"{m:.2f} ± {s:.2f}" for m, s in zip(mean, std)]
    return out.reset_index().rename(columns={"ratio": "r"})[["setting", "r", "n", "last err %", "best-val err %",
                                                              "collapsed"]]


def write_report(runs: pd.DataFrame, results: Path, command: str) -> None:
    """results/mnist_stability.csv (every run, full precision) and .md (summary by setting, then every run)."""
    from cdb.core.metrics import COLLAPSE_RULE
    from cdb.rundir.io import atomic_write_text

    atomic_write_text(results / "mnist_stability.csv", runs.to_csv(index=False, lineterminator="\n"))
    shown = pd.DataFrame({
        "setting": runs["setting"], "r": runs["ratio"], "seed": runs["seed"],
        "last err %": runs["last_error"].map("{:.2f}".format),
        "best-val err %": runs["best_error"].map("{:.2f}".format),
        "last minority acc %": runs["last_minority_acc"].map("{:.1f}".format), "collapsed": runs["collapsed"],
        "weight flips": runs["weight_flips"], "validations": runs["validations"], "s": runs["seconds"],
        "overrides": "`" + runs["overrides"].astype(str) + "`"})
    md = ["# CDB-CE stability on imbalanced MNIST 4/9: measured", "",
          f"Generated by `{command}`: one row per finished run (rows of earlier invocations are kept); the "
          "overrides column is each run's exact setting, on top of dataset.majority_ratio=<r> seed=<seed>.", "",
          "## By setting and ratio", "",
          "Test error mean ± std over the seeds (population std, ddof=0); collapsed: runs whose last checkpoint "
          f"collapsed ({COLLAPSE_RULE}).", "",
          summary(runs).to_markdown(index=False, tablefmt="github", disable_numparse=True), "",
          "## Every run", "",
          shown.to_markdown(index=False, tablefmt="github", disable_numparse=True)]
    atomic_write_text(results / "mnist_stability.md", "\n".join(md) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--ratio", type=float, nargs="+", default=[0.99])
    p.add_argument("--only", nargs="*", default=None, help=f"subset of {list(GRID)}")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default=os.environ.get("CDB_OUTPUT_ROOT", "outputs") + "/stability")
    p.add_argument("--results", default="results")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: report every finished run of the selected settings found under --out")
    a = p.parse_args()
    names = a.only or list(GRID)
    jobs = [(n, GRID[n], s, r, a.out) for n in names for r in a.ratio for s in a.seeds]
    if a.report_only:
        jobs = [j for j in jobs if (Path(a.out) / j[0] / f"r={j[3]}" / f"seed={j[2]}" / "metrics.json").exists()]
    if not jobs:
        raise SystemExit(f"mnist_stability: error: no finished run of {names} under {a.out}")
    with ProcessPoolExecutor(a.jobs) as ex:
        rows = []
        for row in ex.map(run_one, jobs):
            rows.append(row)
            print(json.dumps(row), flush=True)
    results = Path(a.results)
    write_report(merge_rows(results / "mnist_stability.csv", rows), results, f"python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
