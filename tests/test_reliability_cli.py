"""Reliability faults of issue 11 as a user meets them: real `python -m cdb.cli.run` processes on tiny runs.

Every user error ends in one line `cdb-run: error: ...` and exit code 2; docs/reliability.md is the table."""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, cdb_run

TINY = ["trainer.unit=step", "trainer.length=2", "trainer.eval_every=1", "trainer.progress=false",
        "trainer.milestones=[]", "threads=1"]


def one_line(r: subprocess.CompletedProcess, needle: str) -> str:
    err = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("cdb-run: error: ") and needle in err, err
    return err


def snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): (p.read_bytes(), p.stat().st_mtime_ns) for p in d.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def finished(mnist_dir, tmp_path_factory):
    """One finished tiny run; tests that damage it work on a copy."""
    base = tmp_path_factory.mktemp("finished")
    r = cdb_run(base, "loss=ce", *TINY, "-v", data=mnist_dir)  # -v: debug lines too (test_verbose_run_logs_debug_lines)
    out = base / "out"
    assert r.returncode == 0, r.stderr
    run = next(out.rglob("metrics.json")).parent
    return out, run, r


def copy_run(finished, tmp_path) -> tuple[Path, Path]:
    import shutil

    out, run, _ = finished
    shutil.copytree(out, tmp_path / "out")
    return tmp_path / "out", tmp_path / "out" / run.relative_to(out)


# ---- item 1 and 8: a refused run changes nothing; run.log; .hydra written by us ------------------------------
def test_refused_run_leaves_the_finished_run_untouched(finished, mnist_dir, tmp_path):
    out, run = copy_run(finished, tmp_path)
    before = snapshot(run)
    assert {"config.yaml", "data.json", ".hydra/config.yaml", ".hydra/overrides.yaml", "run.log"} <= set(before)
    assert not list(run.glob("cli.log")) and b"settings:" in before["run.log"][0]
    assert b"data: dataset=mnist_imbalanced, train=5000, val=1000, test=1600" in before["run.log"][0]
    time.sleep(0.05)  # a rewrite would show in the mtimes too
    # data_root, trainer.progress and trainer.channels_last are not part of the directory name
    r = cdb_run(tmp_path, "loss=ce", *TINY, f"data_root={tmp_path / 'elsewhere'}", "trainer.progress=true",
                "trainer.channels_last=true", data=mnist_dir)
    one_line(r, f"{run} already holds a run; pass resume=true")
    assert snapshot(run) == before
    # resume=true on a finished run only reports it, and keeps its record
    r = cdb_run(tmp_path, "loss=ce", *TINY, "trainer.channels_last=true", "resume=true", data=mnist_dir)
    assert r.returncode == 0 and "test error" in r.stdout, r.stderr
    after = snapshot(run)
    assert {k: v for k, v in after.items() if k != "run.log"} == {k: v for k, v in before.items() if k != "run.log"}
    assert "channels_last: false" in (run / "config.yaml").read_text()


# ---- item 2: two processes on one directory ----------------------------------------------------------------
def test_second_concurrent_run_is_refused_with_one_line(mnist_dir, tmp_path):
    env = {**os.environ, "CDB_DATA_ROOT": str(mnist_dir), "CDB_OUTPUT_ROOT": str(tmp_path), "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "cdb.cli", "loss=ce", "trainer.unit=step", "trainer.length=100000",
            "trainer.eval_every=100000", "trainer.progress=false", "threads=1"]
    first = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not list(tmp_path.rglob(".lock")):  # the first run holds the directory
            assert first.poll() is None and time.time() < deadline, first.communicate()[1][-2000:]
            time.sleep(0.2)
        lock = next(tmp_path.rglob(".lock"))
        second = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        err = one_line(second, f"{lock.parent} is in use by another cdb-run (pid {first.pid}")
        assert first.poll() is None and err  # the first one trains on, alone
    finally:
        first.kill()  # SIGKILL: its lock file stays behind, stale
        first.wait()
    assert lock.exists()  # kill -9 left it; tests/test_reliability.py shows the next start takes it over


# ---- item 3: one line instead of a traceback ---------------------------------------------------------------
@pytest.mark.parametrize("override, needle", [
    ("seed=abc", "seed='abc' is not allowed"),
    ("trainer.lr=abc", "trainer.lr='abc' is not allowed: a number"),
    ("trainer.batch_size=2.5", "trainer.batch_size=2.5 is not allowed: an integer"),
    ("threads=-1", "threads=-1 is not allowed"),
    ("imbalance=50", "imbalance=50 is not allowed: dataset mnist_imbalanced does not use it"),
])
def test_bad_values_are_one_line_and_leave_no_directory(mnist_dir, tmp_path, override, needle):
    one_line(cdb_run(tmp_path, "loss=ce", *TINY, override, data=mnist_dir), needle)
    assert not list(tmp_path.rglob("seed=*")), list(tmp_path.rglob("*"))


def test_debug_flag_shows_the_traceback(mnist_dir, tmp_path, monkeypatch):
    r = cdb_run(tmp_path, "loss=ce", *TINY, "seed=abc", "hydra.verbose=true", data=mnist_dir)
    assert r.returncode != 0 and "Traceback" in r.stderr and "seed='abc'" in r.stderr
    monkeypatch.setenv("CDB_DEBUG", "1")
    r = cdb_run(tmp_path, "loss=ce", *TINY, "seed=abc", data=mnist_dir)
    assert r.returncode != 0 and "Traceback" in r.stderr and "seed='abc'" in r.stderr


def test_verbose_run_logs_debug_lines(finished):
    _, run, r = finished
    log = (run / "run.log").read_text()
    assert "[DEBUG] - holding" in log and "[INFO] - settings:" in log
    assert "holding" in r.stderr  # the console shows debug lines too under -v / hydra.verbose


def _damaged_mnist(tmp_path: Path, mnist_dir: Path, how: str) -> Path:
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (mnist_dir / "MNIST" / "raw").glob("*-ubyte"):
        (raw / f.name).symlink_to(f)
    target = raw / "t10k-images-idx3-ubyte"
    data = target.read_bytes()
    target.unlink()
    target.write_bytes(data[: len(data) // 2] if how == "truncated" else data[3::-1] + data[4:])
    return tmp_path / "data"


@pytest.mark.parametrize("how, needle", [("truncated", "data bytes where its header announces 10000 images"),
                                          ("flipped", "header 0x03080000, expected 0x00000803")])
def test_damaged_mnist_is_one_line(mnist_dir, tmp_path, how, needle):
    data = _damaged_mnist(tmp_path, mnist_dir, how)
    err = one_line(cdb_run(tmp_path, "loss=ce", *TINY, data=data), needle)
    assert "t10k-images-idx3-ubyte" in err
    assert not list((tmp_path / "out").rglob("seed=*"))  # the failed run left no half-made directory


def test_truncated_cifar_pickle_is_one_line(tmp_path):
    import pickle

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    good = pickle.dumps({"data": [[0] * 3072] * 4, "fine_labels": [0, 1, 2, 3]})
    for name in ("train", "test"):
        (folder / name).write_bytes(good[:100])
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [str(i) for i in range(100)]}))
    err = one_line(cdb_run(tmp_path, "dataset=cifar_lt", *TINY, data=tmp_path), "is not a CIFAR python pickle")
    assert str(folder / "train") in err


def test_hostile_last_pt_on_resume_is_one_line(finished, mnist_dir, tmp_path):
    """(garbage and truncated files: tests/test_reliability.py, in-process)"""
    from test_reliability import Hostile

    out, run = copy_run(finished, tmp_path)
    last = run / "checkpoints" / "last.pt"
    torch.save({"model": Hostile(f"touch {tmp_path / 'pwned'}")}, last)
    err = one_line(cdb_run(tmp_path, "loss=ce", *TINY, "resume=true", data=mnist_dir), str(last))
    assert "weights_only" not in err and not (tmp_path / "pwned").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the in-process test covers it")
def test_unwritable_output_directory_is_one_line(mnist_dir, tmp_path):
    locked = tmp_path / "readonly"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        one_line(cdb_run(tmp_path, "loss=ce", *TINY, f"output_root={locked / 'outputs'}", data=mnist_dir),
                 f"cannot write {locked}: permission denied; choose a writable output_root")
    finally:
        locked.chmod(0o755)


def test_unwritable_output_directory_in_process(tmp_path, monkeypatch, capsys):
    """The same pre-flight for any user: os.access says no, as it does for a non-root user on a 0555 folder."""
    from cdb.cli import run as cli

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    with pytest.raises(SystemExit) as exc:
        cli.main(["loss=ce", f"output_root={tmp_path}/outputs"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"cdb-run: error: cannot write {tmp_path}: permission denied; choose a writable output_root "
                   "(or CDB_OUTPUT_ROOT)")
    assert not (tmp_path / "outputs").exists()


def test_output_root_under_a_file_is_one_line(mnist_dir, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    one_line(cdb_run(tmp_path, "loss=ce", *TINY, f"output_root={tmp_path / 'file' / 'outputs'}", data=mnist_dir),
             f"{tmp_path / 'file'} is a file; choose another output_root")


def test_full_disk_is_one_line(mnist_dir, tmp_path):
    """A file-size limit makes every write past 64 KiB fail as a full disk would (the checkpoint is ~0.5 MB)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    env = {**os.environ, "CDB_DATA_ROOT": str(mnist_dir), "CDB_OUTPUT_ROOT": str(tmp_path), "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "cdb.cli", "loss=ce", *TINY], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300, preexec_fn=limit)
    err = one_line(r, "could not write ")
    assert "resume=true" in err and "checkpoints" in err
    assert not list(tmp_path.rglob("*.tmp"))


def test_corrupt_metrics_json_under_cdb_table_is_one_line(finished, tmp_path):
    out, run = copy_run(finished, tmp_path)
    (run / "metrics.json").write_text('{"status": "comp')
    r = subprocess.run([sys.executable, "-c", "from cdb.cli.table import main; main()", "table1", "--runs", str(out),
                        "--out", str(tmp_path / "res")], cwd=REPO, capture_output=True, text=True, timeout=120)
    err = r.stderr.strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"{run / 'metrics.json'} cannot be read as JSON" in err


# ---- item 6: modes and orphaned temporaries ------------------------------------------------------------------
def test_files_are_readable_by_others_and_orphans_are_removed(finished, mnist_dir, tmp_path):
    out, run = copy_run(finished, tmp_path)
    for name in ("metrics.json", "config.yaml", "log.jsonl", "checkpoints/last.pt", "run.log"):
        assert (finished[1] / name).stat().st_mode & 0o044 == 0o044, name  # tests run under umask 022
    orphans = [run / ".log.jsonl.x1y2.tmp", run / "checkpoints" / ".last.pt.z3.tmp"]
    for o in orphans:
        o.write_bytes(b"half a file from a kill -9")
    r = cdb_run(tmp_path, "loss=ce", *TINY, "resume=true", data=mnist_dir)
    assert r.returncode == 0, r.stderr
    assert not any(o.exists() for o in orphans)


# ---- item 7: sweeps -----------------------------------------------------------------------------------------
def test_sweep_summary_counts_ok_and_failed(mnist_dir, tmp_path):
    r = cdb_run(tmp_path, "-m", "loss=cdb", "loss.tau=1,-1", *TINY, data=mnist_dir)
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("cdb-run: sweep") or ln.startswith("cdb-run: job")]
    assert lines[0] == "cdb-run: sweep: 1 ok, 1 failed", r.stderr
    assert lines[1].startswith("cdb-run: job #1 (loss=cdb,loss.tau=-1") and "loss.tau=-1" in lines[1]
    assert len(list(tmp_path.rglob("metrics.json"))) == 1
    assert not list(tmp_path.rglob(".cdb-jobs-*"))


def test_sweep_counts_a_job_that_fails_while_training(mnist_dir, tmp_path):
    """The pack launcher builds every job first and trains later: a failure in training is counted too."""
    r = cdb_run(tmp_path, "-m", "loss=ce", "trainer.lr=1e30,0.01", *TINY, data=mnist_dir)
    assert r.returncode == 1, r.stderr
    assert "cdb-run: sweep: 1 ok, 1 failed" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "trainer.lr=1e+30" in r.stderr and "non-finite" in r.stderr
    # it diverged in its first step, before any checkpoint: like any run that fails that early, it leaves nothing
    (finished,) = tmp_path.rglob("metrics.json")
    assert "trainer.lr=0.01" in finished.parent.parent.name
