"""A finished run directory as a user meets it (real `python -m cdb.cli` processes): a refused run changes nothing
in it, resume=true only reports it, its files are readable by others and orphaned temporaries go, and damaged
files in it (a hostile last.pt, a torn metrics.json under cdb-table) are one line. docs/reliability.md is the table."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import REPO, cdb_run
from helpers.faults import TINY, one_line


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


def test_verbose_run_logs_debug_lines(finished):
    _, run, r = finished
    log = (run / "run.log").read_text()
    assert "[DEBUG] - holding" in log and "[INFO] - settings:" in log
    assert "holding" in r.stderr  # the console shows debug lines too under -v / hydra.verbose


def test_files_are_readable_by_others_and_orphans_are_removed(finished, mnist_dir, tmp_path):
    out, run = copy_run(finished, tmp_path)
    for name in ("metrics.json", "config.yaml", "log.jsonl", "checkpoints/last.pt", "run.log"):
        assert (finished[1] / name).stat().st_mode & 0o044 == 0o044, name  # tests run under umask 022
    orphans = [run / ".cdb-partial.log.jsonl.x1y2.tmp", run / "checkpoints" / ".cdb-partial.last.pt.z3.tmp"]
    for o in orphans:
        o.write_bytes(b"half a file from a kill -9")
    r = cdb_run(tmp_path, "loss=ce", *TINY, "resume=true", data=mnist_dir)
    assert r.returncode == 0, r.stderr
    assert not any(o.exists() for o in orphans)


def test_hostile_last_pt_on_resume_is_one_line(finished, mnist_dir, tmp_path):
    """(garbage and truncated files: tests/unit/rundir/test_atomic_io.py, in-process)"""
    from helpers.faults import Hostile

    out, run = copy_run(finished, tmp_path)
    last = run / "checkpoints" / "last.pt"
    torch.save({"model": Hostile(f"touch {tmp_path / 'pwned'}")}, last)
    err = one_line(cdb_run(tmp_path, "loss=ce", *TINY, "resume=true", data=mnist_dir), str(last))
    assert "weights_only" not in err and not (tmp_path / "pwned").exists()


def test_corrupt_metrics_json_under_cdb_table_is_one_line(finished, tmp_path):
    out, run = copy_run(finished, tmp_path)
    (run / "metrics.json").write_text('{"status": "comp')
    r = subprocess.run([sys.executable, "-c", "from cdb.cli.table import main; main()", "table1", "--runs", str(out),
                        "--out", str(tmp_path / "res")], cwd=REPO, capture_output=True, text=True, timeout=120)
    err = r.stderr.strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"{run / 'metrics.json'} cannot be read as JSON" in err
