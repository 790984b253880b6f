"""Bad values and odd folders a new user meets: values that are not numbers, a folder
of one class or with an empty class folder, a tie for the largest class, a few colour images among grayscale ones
(dry run and run.log), and a failed run that leaves no folder behind. The builder-level checks:
tests/unit/data/test_own_data_edges.py; the step-unit recipe: tests/unit/build/test_folder_recipe_unit.py."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from cdb.cli import run as cli
from helpers import REPO, cdb_run, run_dirs
from helpers.digits import STEPS
from helpers.faults import TINY, one_line
from helpers.forked import run_module


def dry(capsys, *argv: str) -> tuple[int, str, str]:
    """cdb-run ARGV dry_run=true in this process: (exit code, stdout, stderr)."""
    try:
        cli.main([*argv, "dry_run=true"])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def write(root: Path, layout: dict[str, dict[str, list[str]]]) -> Path:
    for split, classes in layout.items():
        for name, modes in classes.items():
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i, mode in enumerate(modes):
                Image.new(mode, (8, 8), (30 * i) % 256 if mode == "L" else (30 * i % 256, 9, 200)).save(
                    root / split / name / f"{i}.png")
    return root


# ---- values that are not numbers: one line, in a run and in a dry run ---------------------------------------
@pytest.mark.parametrize("args, line", [
    (["imbalance=abc"], "imbalance='abc' is not allowed: dataset mnist_imbalanced does not use it"),
    (["dataset.majority_ratio=abc"], "dataset.majority_ratio='abc' is not allowed: a number in [0.5, 1)"),
    (["dataset=folder", "dataset.path=two", "imbalance=abc"], "imbalance='abc' is not allowed: null (keep the class "
                                                               "sizes as they are) or a number >= 1"),
    (["dataset=folder", "dataset.path=two", "dataset.majority_ratio=abc"],
     "dataset.majority_ratio='abc' is not allowed: null or a number in [0.5, 1)"),
    (["dataset=folder", "dataset.path=two", "dataset.many_above=abc"],
     "dataset.many_above='abc' is not allowed: auto or a whole number of training images"),
    (["dataset=folder", "dataset.path=two", "dataset.few_below=abc"],
     "dataset.few_below='abc' is not allowed: auto or a whole number of training images"),
    (["dataset=cifar_lt", "+dataset.majority_ratio=abc"],
     "dataset.majority_ratio is not a setting of dataset cifar_lt: its settings are "),
])
def test_values_that_are_not_numbers_are_one_line(digits, capsys, monkeypatch, args, line):
    monkeypatch.setenv("CDB_DATA_ROOT", str(digits))
    code, out, err = dry(capsys, *args)
    assert code == 2 and err.strip().splitlines() == [err.strip()] and "Traceback" not in err, err
    assert err.startswith(f"cdb-run: error: {line}"), err


@pytest.mark.parametrize("args, line", [
    (["dataset=folder", "dataset.path=two", "dataset.many_above=abc"], "dataset.many_above='abc' is not allowed"),
    (["dataset=cifar_lt", "+dataset.majority_ratio=abc"], "dataset.majority_ratio is not a setting of dataset"),
])
def test_the_same_line_from_a_run(digits, tmp_path, args, line):
    one_line(cdb_run(tmp_path, *args, *TINY, data=digits), line)


# ---- folders a classifier cannot learn from ------------------------------------------------------------------
def test_a_folder_of_one_class_is_refused(tmp_path):
    root = write(tmp_path / "data" / "one", {"train": {"4": ["L"] * 30}, "test": {"4": ["L"] * 5}})
    one_line(cdb_run(tmp_path, "dataset=folder", "dataset.path=one", *TINY),
             f"{root / 'train'} has one class (4): a classifier needs at least two")
    assert not run_dirs(tmp_path / "out")


def test_an_empty_class_folder_is_named(tmp_path):
    root = write(tmp_path / "data" / "gap", {"train": {"4": ["L"] * 30, "9": []}, "test": {"4": ["L"] * 5, "9": ["L"]}})
    err = one_line(cdb_run(tmp_path, "dataset=folder", "dataset.path=gap", *TINY),
                   f"class folder {root / 'train' / '9'} is empty: no image")
    assert "val_per_class" not in err


# ---- what the dry run says ----------------------------------------------------------------------------------
def test_a_tie_for_the_largest_class_is_said(tmp_path, capsys, monkeypatch):
    write(tmp_path / "tie", {"train": {"4": ["L"] * 25, "9": ["L"] * 25}, "test": {"4": ["L"] * 3, "9": ["L"] * 3}})
    monkeypatch.setenv("CDB_DATA_ROOT", str(tmp_path))
    code, out, err = dry(capsys, "dataset=folder", "dataset.path=tie", "dataset.image_size=16")
    assert code == 0, err
    assert ("head class: 4 (a tie for the largest class between 4, 9: the first in label order (sorted folder names) "
            "was taken; dataset.class_order chooses another)") in out
    assert "the largest class)" not in out


def test_a_few_colour_images_are_said_in_the_dry_run_and_run_log(tmp_path, capsys, monkeypatch):
    layout = {"train": {"4": ["L"] * 20 + ["RGB"], "9": ["L"] * 19 + ["RGB"] * 2},
              "val": {"4": ["L"] * 2, "9": ["L"] * 2}, "test": {"4": ["L"] * 2, "9": ["L"] * 2}}
    write(tmp_path / "data" / "mixed", layout)
    note = ("3 channels: 3 of the 42 training images probed are in colour (L: 39, RGB: 3), so every image is read as "
            "RGB, and model=auto picks a colour model; dataset.channels=1 reads them all as grayscale")
    monkeypatch.setenv("CDB_DATA_ROOT", str(tmp_path / "data"))
    code, out, err = dry(capsys, "dataset=folder", "dataset.path=mixed")
    assert code == 0, err
    assert f"note: {note}" in out and "input: 3 channels, 8x8" in out and "model: resnet32" in out
    r = cdb_run(tmp_path, "dataset=folder", "dataset.path=mixed", "loss=ce", *STEPS)
    assert r.returncode == 0, r.stderr[-2000:]
    (run,) = run_dirs(tmp_path / "out")
    assert note in (run / "run.log").read_text() and note in r.stderr       # a warning: console and run.log


# ---- a failed run leaves nothing ----------------------------------------------------------------------------
def _in(cwd: Path, mnist_dir, *args: str, **env) -> subprocess.CompletedProcess:
    """cdb-run ARGS from `cwd` with the default output root (./outputs)."""
    e = {k: v for k, v in os.environ.items() if k != "CDB_OUTPUT_ROOT"}
    e.update({"CDB_DATA_ROOT": str(mnist_dir), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
              "HYDRA_FULL_ERROR": "0", **env})
    return run_module("cdb.cli", list(args), e, cwd, timeout=300)


@pytest.mark.parametrize("args, env, line", [
    (["imbalance=abc"], {}, "imbalance='abc' is not allowed"),                       # refused in the job
    ([], {"CDB_DATA_ROOT": "nowhere"}, "MNIST file nowhere/MNIST/raw/"),             # no data
])
def test_a_failed_run_leaves_no_folder(mnist_dir, tmp_path, args, env, line):
    one_line(_in(tmp_path, mnist_dir, *TINY, *args, **env), line)
    assert list(tmp_path.iterdir()) == []                                            # no outputs/, nothing


@pytest.mark.parametrize("args, env, line", [
    (["imbalance=abc"], {}, "imbalance='abc' is not allowed"),
    ([], {"CDB_DATA_ROOT": "nowhere"}, "MNIST file nowhere/MNIST/raw/"),
])
def test_a_failed_run_keeps_the_folders_that_were_there(mnist_dir, tmp_path, args, env, line):
    (tmp_path / "outputs" / "default").mkdir(parents=True)                           # empty, but yours
    one_line(_in(tmp_path, mnist_dir, *TINY, *args, **env), line)
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*")] == [Path("outputs"), Path("outputs/default")]
