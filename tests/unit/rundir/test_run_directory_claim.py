"""The run-directory claim (cdb.rundir.claims), checked in-process: the lock is exclusive and names its directory,
a killed owner's stale lock is taken over, an existing run is refused before anything in it is touched (and
orphaned temporaries go on resume), and a failed fresh run leaves no half-made directory. These are faults of
docs/reliability.md lists every fault and its one line."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cdb.core.errors import CdbError
from helpers import REPO


# ---- item 2: the lock ----------------------------------------------------------------------------------------
def test_lock_is_exclusive_and_names_the_directory(tmp_path):
    from cdb.rundir.claims import LOCK, lock

    with lock(tmp_path):
        assert (tmp_path / LOCK).read_text().split()[0] == str(os.getpid())
        with pytest.raises(CdbError, match=f"{tmp_path} is in use by another cdb-run \\(pid {os.getpid()}"):
            with lock(tmp_path):
                pass
    assert not (tmp_path / LOCK).exists()  # released and removed


def test_stale_lock_of_a_killed_process_is_taken_over(tmp_path, caplog):
    from cdb.rundir.claims import LOCK, lock

    # a real process takes the lock and is killed with SIGKILL while holding it
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from cdb.rundir.claims import lock; import time\n"
            f"with lock({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(CdbError, match="in use"):
            with lock(tmp_path):
                pass
    finally:
        proc.kill()
        proc.wait()
    assert (tmp_path / LOCK).read_text().split()[0] == str(proc.pid)  # the dead owner's file is still there
    with caplog.at_level("WARNING"), lock(tmp_path):
        assert (tmp_path / LOCK).read_text().split()[0] == str(os.getpid())
    assert "took over the lock" in caplog.text and str(proc.pid) in caplog.text


def test_claim_refuses_an_existing_run_before_touching_it_and_removes_orphans(tmp_path):
    from cdb.rundir.claims import claim

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"x")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(CdbError, match="already holds a run; pass resume=true"):
        with claim(tmp_path, resume=False):
            pass
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    orphan = tmp_path / "checkpoints" / ".cdb-partial.last.pt.abc123.tmp"  # a kill during atomic_torch_save
    orphan.write_bytes(b"half")
    with claim(tmp_path, resume=True) as c:
        assert not c.fresh and not orphan.exists()


def test_failed_fresh_run_leaves_no_half_made_directory(tmp_path):
    from cdb.rundir.claims import claim

    run = tmp_path / "exp" / "loss=ce" / "seed=0"
    (tmp_path / "exp" / "loss=cdb" / "seed=0").mkdir(parents=True)  # another run of the sweep
    with pytest.raises(CdbError):
        with claim(run, resume=False) as c:
            assert c.fresh
            (run / "config.yaml").write_text("seed: 0\n")
            raise CdbError("data missing")
    assert not run.exists() and not run.parent.exists() and (tmp_path / "exp" / "loss=cdb" / "seed=0").exists()
