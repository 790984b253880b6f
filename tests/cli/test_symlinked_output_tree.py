"""A shared output tree cannot be turned against its users: a link planted in it (a folder of the tree, the run's
lock, run.log, eval/) is refused in one line, and nothing is read or written through it."""
from __future__ import annotations

import os

import pytest

from helpers import REPO, cdb_run
from helpers.faults import TINY, one_line
from helpers.forked import run_module


@pytest.fixture(scope="module")
def finished(mnist_dir, tmp_path_factory):
    """One finished tiny run: (tmp_path holding out/, its run directory)."""
    tmp = tmp_path_factory.mktemp("tree")
    r = cdb_run(tmp, "loss=ce", *TINY, data=mnist_dir)
    assert r.returncode == 0, r.stderr
    return tmp, next((tmp / "out").rglob("metrics.json")).parent


def test_a_linked_folder_of_the_output_tree_receives_nothing(mnist_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "default").symlink_to(elsewhere)
    one_line(cdb_run(tmp_path, "loss=ce", *TINY, data=mnist_dir),
             f"{tmp_path / 'out' / 'default'} is a symbolic link (to {elsewhere}); cdb writes runs only into real folders")
    assert list(elsewhere.iterdir()) == []


def test_a_linked_run_directory_in_a_sweep_receives_nothing(mnist_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = tmp_path / "out" / "default" / "loss=ce,trainer.eval_every=1,trainer.length=2,trainer.milestones=[],trainer.unit=step"
    run.mkdir(parents=True)
    (run / "seed=0").symlink_to(elsewhere)
    r = cdb_run(tmp_path, "-m", "loss=ce", *TINY, data=mnist_dir)
    assert "seed=0 is a symbolic link" in r.stderr and "sweep: 0 ok, 1 failed" in r.stderr, r.stderr
    assert list(elsewhere.iterdir()) == []


def test_a_linked_lock_neither_leaks_nor_clobbers_its_target(finished, mnist_dir, tmp_path):
    tmp, run = finished
    victim = tmp_path / "victim.txt"
    victim.write_text("secret\n")
    (run / ".lock").symlink_to(victim)
    try:
        err = one_line(cdb_run(tmp, "loss=ce", *TINY, data=mnist_dir), ".lock is a symbolic link")
    finally:
        (run / ".lock").unlink()
    assert victim.read_text() == "secret\n" and "secret" not in err


def test_a_linked_run_log_is_not_appended_to_on_resume(finished, mnist_dir, tmp_path):
    tmp, run = finished
    target = tmp_path / "target.txt"
    target.write_text("theirs\n")
    real = run / "run.log"
    real.rename(tmp_path / "run.log.saved")
    real.symlink_to(target)
    try:
        one_line(cdb_run(tmp, "loss=ce", *TINY, "resume=true", data=mnist_dir), "run.log is a symbolic link")
    finally:
        real.unlink()
        (tmp_path / "run.log.saved").rename(real)
    assert target.read_text() == "theirs\n"


def test_a_linked_eval_folder_receives_no_report(finished, mnist_dir, tmp_path):
    _, run = finished
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "eval").symlink_to(elsewhere)
    env = {**os.environ, "CDB_DATA_ROOT": str(mnist_dir), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    try:
        r = run_module("cdb", ["eval", str(run)], env, REPO, timeout=300)
    finally:
        (run / "eval").unlink()
    one_line(r, f"{run / 'eval'} is a symbolic link", prog="python -m cdb eval")
    assert list(elsewhere.iterdir()) == []
