"""Reliability faults of issue 11, checked in-process: damaged files made in a temp dir, the run-directory lock,
file modes, settings checks, sweep syntax, packaging. docs/reliability.md lists every fault and its one line."""
from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from cdb.core.errors import CdbError, DataError, user_message
from conftest import REPO, compose


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
    orphan = tmp_path / "checkpoints" / ".last.pt.abc123.tmp"  # a kill during atomic_torch_save
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


# ---- item 6: file modes and full disks ----------------------------------------------------------------------
def test_results_get_the_umask_mode_not_0600(tmp_path):
    from cdb.rundir.io import atomic_torch_save, atomic_write_json

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "metrics.json", {"a": 1})
        atomic_torch_save({"w": torch.zeros(2)}, tmp_path / "last.pt")
        os.umask(0o077)
        atomic_write_json(tmp_path / "private.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "last.pt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600


def test_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch):
    import errno

    from cdb.rundir import io

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", no_space)
    with pytest.raises(OSError) as exc:
        io.atomic_write_json(tmp_path / "metrics.json", {"a": 1})
    line = user_message(exc.value)
    assert line is not None and "No space left on device" in line and "resume=true" in line
    assert not list(tmp_path.iterdir())  # no temporary left behind

    def torch_full(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(io.torch, "save", torch_full)
    with pytest.raises(CdbError, match=f"could not write {tmp_path / 'last.pt'}"):
        io.atomic_torch_save({}, tmp_path / "last.pt")


# ---- item 3: damaged files --------------------------------------------------------------------------------
class Hostile:
    """Unpickling it runs a shell command: what a malicious file does."""

    def __init__(self, cmd: str = "true"):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


@pytest.mark.parametrize("content", [b"garbage, not a checkpoint", "hostile", "truncated"])
def test_bad_checkpoint_is_one_line_and_never_suggests_weights_only_false(tmp_path, content):
    from cdb.rundir.io import atomic_torch_save, load_checkpoint

    path = tmp_path / "last.pt"
    if content == "hostile":
        torch.save({"model": Hostile(f"touch {tmp_path / 'pwned'}")}, path)
    elif content == "truncated":
        atomic_torch_save({"model": {"w": torch.ones(1000)}}, path)
        path.write_bytes(path.read_bytes()[:500])
    else:
        path.write_bytes(content)
    with pytest.raises(CdbError) as exc:
        load_checkpoint(path)
    msg = str(exc.value)
    assert str(path) in msg and "weights_only" not in msg and len(msg.splitlines()) == 1
    assert ("could run code" in msg) == (content == "hostile")
    assert not (tmp_path / "pwned").exists()


def test_corrupt_metrics_json_names_the_file(tmp_path):
    from cdb.report.runs import load_runs

    run = tmp_path / "a" / "seed=0"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "metrics.json").write_text('{"status": "compl')
    with pytest.raises(CdbError, match=f"{run / 'metrics.json'} cannot be read as JSON"):
        load_runs(tmp_path)


def _cifar_dir(tmp_path: Path, train: bytes) -> Path:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(train)
    ok = pickle.dumps({"data": [[0] * 3072], "fine_labels": [0]})
    (folder / "test").write_bytes(ok)
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [str(i) for i in range(100)]}))
    return tmp_path


@pytest.mark.parametrize("kind", ["truncated", "hostile"])
def test_damaged_cifar_pickle_is_one_line_and_runs_no_code(tmp_path, kind):
    from cdb.data.cifar import load_cifar

    marker = tmp_path / "pwned"
    good = pickle.dumps({"data": [[0] * 3072] * 4, "fine_labels": [0, 1, 2, 3]})
    payload = good[: len(good) // 2] if kind == "truncated" else pickle.dumps({"data": Hostile(f"touch {marker}")})
    root = _cifar_dir(tmp_path, payload)
    load_cifar.cache_clear()
    with pytest.raises(DataError) as exc:
        load_cifar(str(root), 100)
    msg = str(exc.value)
    assert str(root / "cifar-100-python" / "train") in msg and len(msg.splitlines()) == 1
    assert not marker.exists()


# ---- item 4: MNIST files that lie -----------------------------------------------------------------------
def idx_bytes(magic: int, dims: list[int], body: bytes) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + body


def mnist_dir(tmp_path: Path, labels=(4, 9, 4), n_images=3, images: bytes | None = None,
              image_magic=0x803) -> Path:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    img = images if images is not None else idx_bytes(image_magic, [n_images, 28, 28], bytes(784 * n_images))
    lab = idx_bytes(0x801, [len(labels)], bytes(labels))
    for pre in ("train", "t10k"):
        (raw / f"{pre}-images-idx3-ubyte").write_bytes(img)
        (raw / f"{pre}-labels-idx1-ubyte").write_bytes(lab)
    return tmp_path


@pytest.mark.parametrize("make, needle", [
    (lambda t: mnist_dir(t), None),
    (lambda t: mnist_dir(t, labels=(4, 9, 12)), "holds label 12 (digits are 0-9)"),
    (lambda t: mnist_dir(t, labels=(4, 9)), "(3 images) and"),
    (lambda t: mnist_dir(t, image_magic=0x03080000), "header 0x03080000, expected 0x00000803"),
    (lambda t: mnist_dir(t, images=idx_bytes(0x803, [3, 28, 28], bytes(1000))), "1000 data bytes where"),
    (lambda t: mnist_dir(t, images=b"\x00\x00"), "shorter than its header"),
])
def test_mnist_idx_files_are_validated(tmp_path, make, needle):
    from cdb.data.mnist import load_mnist

    root = make(tmp_path)
    load_mnist.cache_clear()
    if needle is None:
        (x, y) = load_mnist(str(root))[True]
        assert x.shape == (3, 28, 28) and y.tolist() == [4, 9, 4] and y.dtype == torch.int64
        return
    with pytest.raises(DataError) as exc:
        load_mnist(str(root))
    assert needle in str(exc.value) and "MNIST" in str(exc.value) and len(str(exc.value).splitlines()) == 1


def test_settings_a_dataset_does_not_use_are_refused():
    from cdb.build.checks import check_run

    with pytest.raises(CdbError, match="imbalance=50 is not allowed: dataset mnist_imbalanced does not use it"):
        check_run(compose(["imbalance=50"]), ["imbalance=50"])
    check_run(compose(["dataset=cifar_lt", "imbalance=50"]), ["dataset=cifar_lt", "imbalance=50"])


@pytest.mark.parametrize("override, needle", [
    ("seed=abc", "seed='abc' is not allowed: an integer >= 0"),
    ("trainer.lr=abc", "trainer.lr='abc' is not allowed: a number"),
    ("trainer.batch_size=2.5", "trainer.batch_size=2.5 is not allowed: an integer"),
    ("threads=-1", "threads=-1 is not allowed: null (PyTorch's default) or an integer >= 1"),
    ("trainer.progress=maybe", "trainer.progress='maybe' is not allowed: true or false"),
])
def test_value_types_are_checked(override, needle):
    from cdb.cli.argv import check_override_types
    from cdb.build.checks import check_run

    with pytest.raises(CdbError) as exc:
        check_override_types([override])  # trainer.*: before composing (the trainer schema would print a page)
        check_run(compose([override]), [override])
    assert str(exc.value) == needle


# ---- item 5: step-unit defaults follow the unit -----------------------------------------------------------
def test_step_unit_defaults_follow_the_unit():
    # the README's example: 2000 steps, validation once per pass (50 steps), lr decay after 3/4 of the run
    step = compose(["loss=cdb", "loss.tau=1.5", "trainer.length=2000", "trainer.unit=step", "trainer.lr=0.01"])
    assert step.trainer.eval_every == 50 and list(step.trainer.milestones) == [1500]
    epoch = compose([])  # the paper's literal schedule is unchanged
    assert epoch.trainer.unit == "epoch" and epoch.trainer.eval_every == 1 and list(epoch.trainer.milestones) == [3000]
    given = compose(["trainer.unit=step", "trainer.eval_every=5", "trainer.milestones=[]"])
    assert given.trainer.eval_every == 5 and list(given.trainer.milestones) == []
    readme = (REPO / "README.md").read_text()
    assert "cdb-run loss=cdb loss.tau=1.5 trainer.length=2000 trainer.unit=step trainer.lr=0.01" in readme


# ---- item 7: sweeps -------------------------------------------------------------------------------------
def test_hydra_sweep_syntax_passes_the_group_check():
    from cdb.cli.argv import check_group_choices as _check_group_choices

    _check_group_choices(["loss=choice(ce,cdb)", "loss=glob(cb*)", "loss=ce,cdb", "seed=range(3)"])
    with pytest.raises(CdbError, match="loss='nope' is not allowed"):
        _check_group_choices(["loss=choice(ce,nope)"])
    with pytest.raises(CdbError, match="matches no config"):
        _check_group_choices(["loss=glob(zz*)"])


def test_missing_launcher_plugin_names_the_extra(monkeypatch):
    import importlib.util

    from cdb.cli import argv as cli_argv

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CdbError, match=r"pip install 'cdb\[sweep\]'"):
        cli_argv.check_group_choices(["hydra/launcher=local2"])


# ---- item 8: packaging and --help -----------------------------------------------------------------------
def test_packaging_lists_every_config_folder_and_an_spdx_license():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"  # an SPDX string: the TOML table form makes setuptools warn
    packages = set(meta["tool"]["setuptools"]["packages"])
    folders = {"cdb_configs" + "".join("." + part for part in d.relative_to(REPO / "configs").parts)
               for d in (REPO / "configs").rglob("*") if d.is_dir() and list(d.glob("*.yaml"))}
    assert folders <= packages, folders - packages


def test_cli_module_does_not_import_torch():
    code = "import sys, cdb.cli.run, cdb.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_building_the_wheel_prints_no_setuptools_warning(tmp_path):
    """What `pip install` shows: build a wheel from a copy of the sources (about a second) and read its output."""
    import shutil

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("cdb", "configs", "hydra_plugins"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                        str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    # setuptools' BuildBackendWarning / SetuptoolsDeprecationWarning blocks (the ~350 lines) are gone
    assert "Warning" not in out, [ln for ln in out.splitlines() if "Warning" in ln][:5]
