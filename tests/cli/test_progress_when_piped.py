"""A run whose output goes to a file or a pipe says when it starts (what trains, where it writes) and, now and then,
how far it is (CDB_PROGRESS_SECONDS=0 here: at every validation)."""
from __future__ import annotations

from helpers import cdb_run


def test_a_piped_run_says_what_it_trains_and_how_far_it_is(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CDB_PROGRESS_SECONDS", "0")
    r = cdb_run(tmp_path, "loss=ce", "threads=1", "trainer.length=100", "trainer.progress=auto", data=mnist_dir)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    run = lines[0].split(": ")[0]
    assert lines[0] == f"{run}: training on mnist_imbalanced (5000 training images), 100 steps on cpu"
    assert lines[1].startswith(f"{run}: 50/100 (50 %), ") and "validation balanced accuracy" in lines[1]
    assert lines[2].startswith(f"{run}: test error ")
