"""Faults a careless user or a neighbour meets, in real `python -m cdb.cli` processes: nothing is
written outside the output root, one bad run never stops a sweep, values are checked, SIGTERM is Ctrl-C, and the
smaller faults. docs/reliability.md has each fault's line."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import REPO, cdb_run
from helpers.faults import TINY, one_line
from helpers.forked import run_module

T20 = ["trainer.unit=step", "trainer.length=20", "trainer.eval_every=10", "trainer.checkpoint_every=10",
       "trainer.milestones=[]", "trainer.progress=false", "threads=1", "loss=ce"]


def _env(mnist_dir, **extra):
    return {**os.environ, "CDB_DATA_ROOT": str(mnist_dir), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
            "HYDRA_FULL_ERROR": "0", **extra}


def test_an_empty_output_root_is_refused_and_writes_nothing(mnist_dir, tmp_path):
    before = os.path.exists("/default")  # where the run went before the fix (<empty root>/default/...)
    r = run_module("cdb.cli", [*TINY, "loss=ce"], _env(mnist_dir, CDB_OUTPUT_ROOT=""), tmp_path, timeout=300)
    one_line(r, "output_root='' is not allowed: a folder")
    assert list(tmp_path.iterdir()) == [] and os.path.exists("/default") == before


def test_name_cannot_climb_out_of_the_output_root(mnist_dir, tmp_path):
    root = tmp_path / "a" / "b"
    r = run_module("cdb.cli", [*TINY, "loss=ce", "name=../../escape"], _env(mnist_dir, CDB_OUTPUT_ROOT=str(root)),
                   tmp_path, timeout=300)
    one_line(r, "name='../../escape' is not allowed: one folder name")
    assert not (tmp_path / "escape").exists() and not root.exists()


def test_a_damaged_finished_run_fails_alone_and_the_sweep_goes_on(mnist_dir, tmp_path):
    assert cdb_run(tmp_path, "-m", *T20, "seed=0", data=mnist_dir).returncode == 0
    metrics = next((tmp_path / "out").rglob("metrics.json"))
    metrics.write_text("garbage{")
    r = cdb_run(tmp_path, "-m", *T20, "seed=0,1", "resume=true", data=mnist_dir)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "cdb-run: sweep: 1 ok, 1 failed" in r.stderr and "metrics.json cannot be read as JSON" in r.stderr
    assert len(list((tmp_path / "out").rglob("metrics.json"))) == 2   # seed 1 trained


def test_any_seed_in_the_accepted_range_trains(mnist_dir, tmp_path):
    r = cdb_run(tmp_path, "-m", *T20, "seed=3000000,4294967295", data=mnist_dir)
    assert r.returncode == 0 and "cdb-run: sweep: 2 ok, 0 failed" in r.stderr, r.stderr
    one_line(cdb_run(tmp_path, *T20, "seed=4294967296", data=mnist_dir),
             "seed=4294967296 is not allowed: an integer in [0, 4294967296)")


@pytest.mark.parametrize("arg, needle", [
    ("dataset.majority_ratio=abc", "dataset.majority_ratio='abc' is not allowed: a number in [0.5, 1)"),
    ("trainer.checkpoint_every=0", "trainer.checkpoint_every=0 is not allowed: an integer >= 1"),
    ("trainer.weight_decay=-1", "trainer.weight_decay=-1.0 is not allowed: a number >= 0"),
    ("trainer.momentum=-1", "trainer.momentum=-1.0 is not allowed: a number in [0, 1)"),
    ("trainer.momentum=2", "trainer.momentum=2.0 is not allowed: a number in [0, 1)"),
    ("dataset.n_train=10", "dataset.n_train=10 is not allowed: a size that leaves the minority class"),
    ("hydra.launcher.n_jobs=0", "hydra.launcher.n_jobs=0 is not allowed: an integer >= 1"),
])
def test_values_are_checked_before_training(mnist_dir, tmp_path, arg, needle):
    multi = ["-m"] if arg.startswith("hydra.launcher") else []
    r = cdb_run(tmp_path, *multi, *TINY, "loss=ce", arg, data=mnist_dir)
    err = r.stderr.strip().splitlines()
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr and any(needle in line for line in err), r.stderr
    assert not list((tmp_path / "out").rglob("last.pt"))


def test_sigterm_is_handled_like_ctrl_c(mnist_dir, tmp_path):
    long = [*T20[:1], "trainer.length=5000", *T20[2:]]
    env = _env(mnist_dir, CDB_OUTPUT_ROOT=str(tmp_path / "out"))
    p = subprocess.Popen([sys.executable, "-m", "cdb.cli", *long], cwd=REPO, env=env, stderr=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list((tmp_path / "out").rglob("last.pt")):
        time.sleep(0.5)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("cdb-run: error: terminated (SIGTERM); the run kept its log and its last checkpoint (unit ")
    run = next((tmp_path / "out").rglob("last.pt")).parent.parent
    assert not (run / ".lock").exists() and (run / "checkpoints" / "last.pt").exists()
    assert "resumed" not in err and run.joinpath("log.jsonl").read_text().strip()  # its validations are on disk


def test_help_into_a_closed_pipe_ends_quietly(tmp_path):
    r = subprocess.run(f"'{sys.executable}' -m cdb.cli --help | head -1", shell=True, cwd=REPO, capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert r.stdout.startswith("cdb-run:") and "BrokenPipeError" not in r.stderr and "Traceback" not in r.stderr


def test_table_and_figures_refuse_an_out_that_is_a_file(tmp_path):
    target = tmp_path / "file.md"
    target.write_text("keep me")
    for cmd, prog in (("from cdb.cli.table import main; main()", "cdb-table"),
                      ("from cdb.cli.figures import main; main()", "cdb-figures")):
        args = ["table1", "--runs", str(tmp_path)] if prog == "cdb-table" else ["figure2"]
        r = subprocess.run([sys.executable, "-c", cmd, *args, "--out", str(target)], cwd=REPO, capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
        assert r.returncode == 2 and r.stderr.strip() == \
            f"{prog}: error: --out {target} is a file: give a folder (the files are written inside it)", r.stderr
    assert target.read_text() == "keep me"


def test_run_log_names_only_presets_that_exist_and_warns_about_slow_settings(mnist_dir, tmp_path):
    many = (os.cpu_count() or 1) + 1
    tiny = [a for a in TINY if not a.startswith("threads=")]
    r = cdb_run(tmp_path, *tiny, "loss=cdb", f"threads={many}", "trainer.batch_size=6000", data=mnist_dir)
    assert r.returncode == 0, r.stderr
    log = next((tmp_path / "out").rglob("run.log")).read_text()
    presets = next(line for line in log.splitlines() if "presets:" in line)
    assert "dataset_loss" not in presets  # configs/dataset_loss/mnist_imbalanced_cdb.yaml does not exist
    assert f"threads={many} is more than the" in log
    assert "trainer.batch_size=6000 is larger than the training split (5000 images)" in log
