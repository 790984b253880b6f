"""Nothing a run logged is deleted by an interruption: a run stopped after its first validation row keeps its
directory (log.jsonl, run.log, best.pt) whether or not it had saved a checkpoint, the message says what was kept,
and `resume=true` continues it. SIGHUP (the terminal closed) is handled as SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from helpers import REPO, cdb_run

STEPS = ["trainer.unit=step", "trainer.eval_every=5", "trainer.milestones=[]", "trainer.progress=false", "threads=1",
         "loss=ce"]


def _rows(path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip()) if path.exists() else 0


def _stop_after_rows(tmp_path, mnist_dir, args, runs: int, sig, saved: bool = False) -> tuple[subprocess.Popen, str]:
    """Start cdb-run ARGS, send `sig` once each of `runs` run directories has a validation row (and with `saved`, a
    checkpoint); (process, stderr)."""
    env = {**os.environ, "CDB_DATA_ROOT": str(mnist_dir), "CDB_OUTPUT_ROOT": str(tmp_path / "out"),
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    p = subprocess.Popen([sys.executable, "-m", "cdb.cli", *args], cwd=REPO, env=env, stderr=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        logs = list((tmp_path / "out").rglob("log.jsonl"))
        if len(logs) == runs and all(_rows(f) >= 1 and (not saved or (f.parent / "checkpoints" / "last.pt").exists())
                                     for f in logs):
            break
        time.sleep(0.1)
    assert p.poll() is None, "the runs ended before the signal: make them longer"
    p.send_signal(sig)
    _, err = p.communicate(timeout=180)
    return p, err


def test_a_pack_stopped_before_its_first_checkpoint_keeps_its_rows_and_resumes(mnist_dir, tmp_path):
    args = ["-m", *STEPS, "trainer.length=100", "trainer.checkpoint_every=100", "seed=0,1", "pack=2"]
    p, err = _stop_after_rows(tmp_path, mnist_dir, args, 2, signal.SIGTERM)
    assert p.returncode == 143, err
    assert ("cdb-run: error: terminated (SIGTERM); every run kept its logged validations but had no checkpoint yet "
            "(resume=true starts it over from unit 0)") in err, err
    runs = sorted(f.parent for f in (tmp_path / "out").rglob("log.jsonl"))
    assert len(runs) == 2
    for run in runs:
        assert _rows(run / "log.jsonl") >= 1 and (run / "run.log").exists() and (run / "checkpoints" / "best.pt").exists()
        assert not (run / "checkpoints" / "last.pt").exists() and not (run / ".lock").exists()
    again = cdb_run(tmp_path, *args[:-2], "seed=0,1", "pack=2", "resume=true", data=mnist_dir)
    assert again.returncode == 0 and "sweep: 2 ok, 0 failed" in again.stderr, again.stderr
    assert again.stderr.count("no checkpoint was saved before it stopped, so it starts over from unit 0") == 2
    for run in runs:
        units = [json.loads(line)["unit"] for line in (run / "log.jsonl").read_text().splitlines()]
        assert units == list(range(5, 101, 5))  # one row per validation: the replaced ones are not doubled


def test_a_kept_run_is_not_started_over_without_resume(mnist_dir, tmp_path):
    run = tmp_path / "out" / "default" / "x" / "seed=0"
    run.mkdir(parents=True)
    (run / "log.jsonl").write_text('{"unit": 5}\n')
    r = cdb_run(tmp_path, *STEPS, "trainer.length=10", f"hydra.run.dir='{run}'", data=mnist_dir)
    assert r.returncode == 2 and "already holds a run; pass resume=true" in r.stderr, r.stderr
    assert (run / "log.jsonl").read_text() == '{"unit": 5}\n'


def test_sighup_is_a_message_a_released_lock_and_a_resumable_run(mnist_dir, tmp_path):
    args = [*STEPS, "trainer.length=100"]
    p, err = _stop_after_rows(tmp_path, mnist_dir, args, 1, signal.SIGHUP, saved=True)
    assert p.returncode == 129, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("cdb-run: error: terminated (SIGHUP); the run kept its log and its last checkpoint "
                           "(unit "), err
    run = next((tmp_path / "out").rglob("log.jsonl")).parent
    assert not (run / ".lock").exists() and (run / "checkpoints" / "last.pt").exists()
    again = cdb_run(tmp_path, *args, "resume=true", data=mnist_dir)
    assert again.returncode == 0 and (run / "metrics.json").exists(), again.stderr


def test_a_burst_of_signals_is_still_one_line_and_a_clean_stop(mnist_dir, tmp_path):
    """A scheduler (or an impatient user) sends SIGTERM, SIGTERM, SIGHUP: the first stops the run, the others
    cannot break its clean-up into a traceback."""
    env = {**os.environ, "CDB_DATA_ROOT": str(mnist_dir), "CDB_OUTPUT_ROOT": str(tmp_path / "out"),
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    p = subprocess.Popen([sys.executable, "-m", "cdb.cli", *STEPS, "trainer.length=400",
                          "trainer.checkpoint_every=1000"], cwd=REPO, env=env, stderr=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None and not any(_rows(f) for f in (tmp_path / "out").rglob("log.jsonl")):
        time.sleep(0.1)
    for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGHUP):
        p.send_signal(sig)
        time.sleep(0.01)
    _, err = p.communicate(timeout=180)
    assert p.returncode == 143 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("cdb-run: error: terminated (SIGTERM); the run kept its logged "
                                                   "validations but had no checkpoint yet"), err
    run = next((tmp_path / "out").rglob("log.jsonl")).parent
    assert not (run / ".lock").exists() and _rows(run / "log.jsonl") >= 1
