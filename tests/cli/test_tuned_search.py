"""Tuned search on validation as a user runs it: tiny real Optuna studies on real MNIST.

Each trial's objective is recomputed by hand from its run's log.jsonl (the class-wise validation accuracies of every
validation), the study's best trial is the trial with the largest one, `cdb-table compare --best-of` picks that same
run, and rewriting every run's test metrics changes the table's numbers but not the choice. The same command proposes
the same trials again (seeded TPE), with cdb's pack launcher as with Hydra's basic launcher, and a larger budget
extends a study.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

from helpers import REPO, cdb_run, read_log, run_dirs
from helpers.faults import one_line
from helpers.forked import run_module

# three trials of a few steps each on balanced 4/9 (so that trials differ), lr searched on a range that trains
STUDY = ["-m", "experiment=tune_mnist", "loss=cdb", "hydra.sweeper.n_trials=3", "trainer.lr=tag(log,interval(0.005,0.1))",
         "dataset.majority_ratio=0.5", "dataset.val_per_class=100", "dataset.test_per_class=100", "trainer.unit=step",
         "trainer.length=40", "trainer.eval_every=10", "trainer.milestones=[]", "trainer.progress=false", "threads=1"]


def by_hand(run_dir: Path) -> float:
    """The best validation's balanced accuracy: the mean of its class-wise validation accuracies (log.jsonl)."""
    return max(sum(r["val_class_accuracy"]) / len(r["val_class_accuracy"]) for r in read_log(run_dir))


def printed_objectives(stdout: str) -> dict[str, float]:
    """{run directory: the objective cdb-run printed for it}."""
    found = re.findall(r"^(.*): objective \(balanced validation accuracy, best checkpoint\) ([0-9.]+)$", stdout, re.M)
    return {d: float(v) for d, v in found}


def compare(root: Path) -> subprocess.CompletedProcess:
    return run_module("cdb", ["table", "compare", "--runs", str(root), "--best-of", "loss.label"], os.environ, REPO,
                      timeout=300)


def test_a_tuned_study_maximises_balanced_validation_accuracy_and_never_reads_test(mnist_dir, tmp_path):
    r = cdb_run(tmp_path, *STUDY, "hydra/launcher=basic", data=mnist_dir)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "cdb-run: sweep: 3 ok, 0 failed" in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    study = tmp_path / "out" / "tune_mnist_cdb"
    runs = run_dirs(study)
    assert len(runs) == 3
    objectives = {d: by_hand(d) for d in runs}
    assert len(set(objectives.values())) > 1, objectives  # the trials differ, so choosing among them means something
    printed = printed_objectives(r.stdout)
    assert {Path(d) for d in printed} == set(runs)
    for d, value in printed.items():  # what each trial returned to Optuna is the by-hand value
        assert abs(value - objectives[Path(d)]) < 1e-4, (d, value, objectives[Path(d)])
    best = max(objectives, key=objectives.get)
    result = yaml.safe_load((study / "optimization_results.yaml").read_text())
    assert abs(result["best_value"] - objectives[best]) < 1e-9
    cfg = yaml.safe_load((best / "config.yaml").read_text())
    assert result["best_params"] == {"trainer.lr": cfg["trainer"]["lr"], "loss.tau": cfg["loss"]["tau"]}

    # cdb-table compare --best-of keeps the same run; rewriting every test metric (the best run now the worst on
    # test) shows in the table but leaves the choice where it was
    chosen = f"best of 3 settings by balanced validation accuracy ({objectives[best]:.2f} %): {best.parent.name}"
    first = compare(study)
    assert first.returncode == 0 and chosen in first.stdout, first.stdout + first.stderr
    for d in runs:
        m = json.loads((d / "metrics.json").read_text())
        for test in (m["test"], m["checkpoints"]["best"]["test"], m["checkpoints"]["last"]["test"]):
            test["error"] = 99.0 if d == best else 0.0
        (d / "metrics.json").write_text(json.dumps(m))
    again = compare(study)
    assert again.returncode == 0 and chosen in again.stdout, again.stdout + again.stderr
    assert "| 99.00 ± 0.00 (1" in again.stdout and "| 99.00" not in first.stdout

    # the same command proposes the same trials with the same objectives: here through cdb's pack launcher
    r2 = cdb_run(tmp_path / "again", *STUDY, data=mnist_dir)
    assert r2.returncode == 0, r2.stderr[-3000:]
    again_runs = run_dirs(tmp_path / "again" / "out" / "tune_mnist_cdb")
    assert [d.parent.name for d in again_runs] == [d.parent.name for d in runs]
    assert [by_hand(d) for d in again_runs] == [objectives[d] for d in runs]

    # a larger budget extends the study (resume=true, the preset's): the 3 finished trials are read back, not retrained
    stamps = {d: (d / "log.jsonl").stat().st_mtime_ns for d in again_runs}
    r3 = cdb_run(tmp_path / "again", *[a.replace("n_trials=3", "n_trials=4") for a in STUDY], data=mnist_dir)
    assert r3.returncode == 0 and "cdb-run: sweep: 4 ok, 0 failed" in r3.stderr, r3.stderr[-3000:]
    assert len(run_dirs(tmp_path / "again" / "out")) == 4
    assert {d: (d / "log.jsonl").stat().st_mtime_ns for d in again_runs} == stamps


def test_a_failed_trial_is_counted_and_the_study_goes_on(mnist_dir, tmp_path):
    """A learning rate that trains and one that diverges (CE: lr is the whole search space); the seeded TPE sampler
    draws 1e30, 0.05, 1e30: two failed trials, and the best trial is the other one."""
    args = [a for a in STUDY if not a.startswith(("trainer.lr=", "loss="))]
    r = cdb_run(tmp_path, *args, "loss=ce", "trainer.lr=choice(0.05,1e30)", data=mnist_dir)
    assert r.returncode == 1, r.stderr[-3000:]  # a sweep with a failed job ends non-zero, as every sweep does
    assert "cdb-run: sweep: 1 ok, 2 failed" in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "non-finite" in r.stderr
    result = yaml.safe_load((tmp_path / "out" / "tune_mnist_ce" / "optimization_results.yaml").read_text())
    statuses = {d: json.loads((d / "metrics.json").read_text())["status"] for d in run_dirs(tmp_path / "out")}
    (run,) = [d for d, status in statuses.items() if status == "complete"]  # the diverged run records "diverged"
    assert result["best_params"]["trainer.lr"] == 0.05 and abs(result["best_value"] - by_hand(run)) < 1e-9


def test_a_study_whose_every_trial_fails_ends_in_one_line(mnist_dir, tmp_path):
    args = [a for a in STUDY if not a.startswith(("trainer.lr=", "hydra.sweeper.n_trials"))]
    r = cdb_run(tmp_path, *args, "hydra.sweeper.n_trials=2", "trainer.lr=choice(1e30,1e31)", data=mnist_dir)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "cdb-run: error: no trial of the study finished" in r.stderr
    assert "cdb-run: sweep: 0 ok, 2 failed" in r.stderr


def test_a_study_that_cannot_be_fair_is_refused_in_one_line(tmp_path):
    """Before any trial: minimising accuracy, several methods in one study, a search over the seed, and a grid that
    Optuna's GridSampler cannot hold (an interval; CDB-CE's tau mixes `dynamic` with numbers)."""
    base = ["-m", "experiment=tune_mnist", "hydra.sweeper.n_trials=1"]
    one_line(cdb_run(tmp_path, *base, "loss=ce", "hydra.sweeper.direction=minimize"), "use maximize")
    one_line(cdb_run(tmp_path, *base, "loss=ce,cdb"), "one study tunes one method")
    one_line(cdb_run(tmp_path, *base, "loss=ce", "seed=0,1"), "luckiest seed")
    grid = [*base, "hydra/sweeper/sampler=grid"]
    one_line(cdb_run(tmp_path, *grid, "loss=ce"), "finite set of values for trainer.lr, not an interval")
    one_line(cdb_run(tmp_path, *grid, "loss=cdb", "trainer.lr=choice(0.01,0.1)"), "cannot order loss.tau")
    assert not list((tmp_path / "out").rglob("*.json"))
