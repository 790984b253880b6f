"""Every user error is one line `cdb-run: error: ...` and exit code 2, as a user meets it: real `python -m cdb.cli`
processes on tiny runs (docs/reliability.md is the table)."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FAST, REPO, cdb_run
from helpers.faults import TINY, one_line


# ---- settings and data the run cannot use -------------------------------------------------------------------
@pytest.mark.parametrize("args, needle", [
    (["loss=focal_typo"], "loss='focal_typo' is not allowed"),
    (["loss.tau=-1"], "loss.tau=-1"),
    (["dataset.majority_ratio=1.0"], "dataset.majority_ratio=1.0"),
    (["trainer.unit=fortnight"], "trainer.unit='fortnight'"),
    (["trainer.lr=abc"], "trainer.lr='abc' is not allowed: a number"),  # the trainer schema's own error
    (["lossx=ce"], "lossx is not a setting of cdb-run (cdb-run --help lists them); did you mean loss?"),
    (["+lossx=ce"], "lossx is not a setting of cdb-run; did you mean loss?"),
    (["trainer.lrr=0.1"], "trainer.lrr is not a setting; did you mean trainer.lr?"),
    (["~trainer.lr"], "~trainer.lr: a setting cannot be deleted"),
    (["dataset=null"], "dataset=null is not allowed: one of"),
])
def test_bad_input_is_one_clear_line(mnist_dir, tmp_path, args, needle):
    given = {a.lstrip("+~").split("=")[0] for a in args}
    r = cdb_run(tmp_path, *[a for a in FAST if a.split("=")[0] not in given], *args, data=mnist_dir)
    assert r.returncode == 2
    err = r.stderr.strip()
    assert "Traceback" not in err and needle in err, err
    assert len(err.splitlines()) == 1, err


def test_missing_data_is_one_clear_line(tmp_path):
    r = cdb_run(tmp_path, *FAST, data=tmp_path / "nowhere")
    err = r.stderr.strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and "MNIST/raw" in err and "Traceback" not in err


def test_dataset_imbalance_has_one_name(tmp_path):
    proc = cdb_run(tmp_path, "dataset=cifar_lt", "dataset.imbalance=50")
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1
    assert err == "cdb-run: error: dataset.imbalance='50' is not allowed: set by the top-level setting: use " \
                  "imbalance=... instead"
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.yaml"))


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


# ---- damaged data files -------------------------------------------------------------------------------------
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


# ---- output folders that cannot be written, full disks ------------------------------------------------------
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


def test_a_key_given_twice_runs_and_names_the_run_after_its_last_value(mnist_dir, tmp_path):
    r = cdb_run(tmp_path, "loss=ce", *TINY, "trainer.length=400", "trainer.length=2", data=mnist_dir)
    assert r.returncode == 0, r.stderr
    (run,) = {p.parent for p in (tmp_path / "out").rglob("metrics.json")}
    assert "trainer.length=2" in run.parent.name and "400" not in run.parent.name
