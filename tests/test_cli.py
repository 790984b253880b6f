"""cdb-run end to end: a few steps on real MNIST, the run directory it writes, and one-line errors."""
import json

import pytest
import yaml

from conftest import FAST, cdb_run, confusion_error, read_log


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


def test_multirun_sweep_layout(mnist_dir, tmp_path):
    r = cdb_run(tmp_path, "-m", "loss=cdb", "loss.tau=0.5,dynamic", "seed=range(2)", "trainer.length=2",
                "trainer.unit=step", "trainer.eval_every=1", "trainer.progress=false", data=mnist_dir)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    dirs = sorted(str(p.parent.relative_to(out)) for p in out.rglob("metrics.json"))
    assert len(dirs) == 4
    assert any("loss.tau=dynamic" in d and d.endswith("seed=1") for d in dirs)
    assert all(d.startswith("default/") for d in dirs)


@pytest.mark.parametrize("args, needle", [
    (["loss=focal_typo"], "loss='focal_typo' is not allowed"),
    (["loss.tau=-1"], "loss.tau=-1"),
    (["dataset.majority_ratio=1.0"], "dataset.majority_ratio=1.0"),
    (["trainer.unit=fortnight"], "trainer.unit='fortnight'"),
    (["trainer.lr=abc"], "trainer.lr='abc' is not allowed: a number"),  # refused before the trainer schema
])
def test_bad_input_is_one_clear_line(mnist_dir, tmp_path, args, needle):
    r = cdb_run(tmp_path, *FAST, *args, data=mnist_dir)
    assert r.returncode == 2
    err = r.stderr.strip()
    assert "Traceback" not in err and needle in err, err
    assert len(err.splitlines()) == 1, err


def test_missing_data_is_one_clear_line(tmp_path):
    r = cdb_run(tmp_path, *FAST, data=tmp_path / "nowhere")
    err = r.stderr.strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and "MNIST/raw" in err and "Traceback" not in err


def test_help_works(tmp_path):
    r = cdb_run(tmp_path, "--help")
    assert r.returncode == 0 and "loss" in r.stdout and "dataset" in r.stdout
