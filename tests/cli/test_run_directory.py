"""cdb-run end to end on real MNIST: the run directory it writes, the sweep layout, what run.log says, and a run
directory that already holds a run (the same command refuses, resume=true reports) or is in use."""
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from helpers import FAST, REPO, cdb_run, confusion_error, read_log, run_dirs
from helpers.faults import one_line


def test_end_to_end_run_writes_the_run_directory(mnist_dir, tmp_path):
    r = cdb_run(tmp_path, "loss=cdb", "loss.tau=1.5", "dataset.majority_ratio=0.95", "seed=3", *FAST, data=mnist_dir)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "out" / "default" / "dataset.majority_ratio=0.95,loss.tau=1.5,loss=cdb,trainer.eval_every=3," \
        "trainer.length=6,trainer.lr=0.01,trainer.milestones=[],trainer.unit=step" / "seed=3"
    assert run.is_dir(), list(tmp_path.rglob("seed=*"))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["loss"]["tau"] == 1.5 and cfg["dataset"]["majority_ratio"] == 0.95 and cfg["seed"] == 3
    rows = read_log(run)
    assert [r_["unit"] for r_ in rows] == [3, 6]
    for row in rows:
        assert {"train_loss", "lr", "val_class_accuracy", "weights", "tau"} <= set(row)
        assert len(row["val_class_accuracy"]) == 2 and row["tau"] == 1.5
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "complete" and m["selected"] == "last"
    assert set(m["checkpoints"]) == {"last", "best"}
    t = m["test"]
    # the reported test error is the one counted from the selected model's confusion matrix (800 per class)
    n, error, per_class = confusion_error(m["checkpoints"]["last"]["test_confusion"])
    assert n == t["n"] == 1600 and [sum(row) for row in m["checkpoints"]["last"]["test_confusion"]] == [800, 800]
    assert t["error"] == pytest.approx(error) and t["per_class_accuracy"] == pytest.approx(per_class)
    assert f"test error {error:.2f}%" in r.stdout
    assert (run / "checkpoints" / "last.pt").exists() and (run / "checkpoints" / "best.pt").exists()
    assert not list(run.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_multirun_sweep_layout(mnist_dir, tmp_path):
    r = cdb_run(tmp_path, "-m", "loss=cdb", "loss.tau=0.5,dynamic", "seed=range(2)", "trainer.length=2",
                "trainer.unit=step", "trainer.eval_every=1", "trainer.progress=false", data=mnist_dir)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    dirs = sorted(str(p.parent.relative_to(out)) for p in out.rglob("metrics.json"))
    assert len(dirs) == 4
    assert any("loss.tau=dynamic" in d and d.endswith("seed=1") for d in dirs)
    assert all(d.startswith("default/") for d in dirs)


def test_run_log_says_which_preset_set_what(tmp_path, mnist_dir):
    proc = cdb_run(tmp_path, "loss=eql", *FAST, data=mnist_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = run_dirs(tmp_path / "out")
    line = next(x for x in (run / "run.log").read_text().splitlines() if "presets:" in x)
    assert "loss=eql," in line                                                # given on the command line
    assert "model=lenet_ren (chosen by configs/dataset/mnist_imbalanced.yaml)" in line
    assert "trainer=mnist_ren (chosen by configs/dataset/mnist_imbalanced.yaml)" in line
    assert "dataset_loss=mnist_imbalanced_eql (for this dataset and loss)" in line
    assert "dataset=mnist_imbalanced (default)" in line


def test_a_protocol_run_is_named_by_it_and_its_log_says_what_it_chose(tmp_path, mnist_dir):
    proc = cdb_run(tmp_path, "protocol=p1", "loss=ce", *FAST, data=mnist_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = run_dirs(tmp_path / "out")
    setting = run.parent.name.split(",")                   # <output_root>/default/<overrides>/seed=0
    assert "protocol=p1" in setting and not any(s.startswith(("model=", "trainer=", "dataset.")) for s in setting)
    line = next(x for x in (run / "run.log").read_text().splitlines() if "presets:" in x)
    assert "protocol=p1," in line
    assert "model=lenet5 (chosen by configs/protocol/p1.yaml)" in line
    assert "trainer=mnist (chosen by configs/protocol/p1.yaml)" in line
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert (cfg["model"]["name"], cfg["dataset"]["normalize"], cfg["trainer"]["unit"]) == ("lenet5", "standard", "step")


def test_same_command_twice_refuses_then_resume_reports(mnist_dir, tmp_path):
    args = ["loss=ce", *FAST]
    assert cdb_run(tmp_path, *args, data=mnist_dir).returncode == 0
    metrics = next(tmp_path.rglob("metrics.json"))
    before = metrics.read_text()
    again = cdb_run(tmp_path, *args, data=mnist_dir)
    assert again.returncode == 2 and "resume=true" in again.stderr and "Traceback" not in again.stderr
    assert metrics.read_text() == before  # the earlier result is intact
    done = cdb_run(tmp_path, *args, "resume=true", data=mnist_dir)
    assert done.returncode == 0 and "test error" in done.stdout
    assert json.loads(metrics.read_text())["test"] == json.loads(before)["test"]


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
    # kill -9 left it; tests/unit/rundir/test_run_directory_claim.py shows the next start takes it over
    assert lock.exists()
