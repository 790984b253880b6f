"""Faults of the command line itself, each refused in one line before any folder is made (or, for output into a
pipe whose reader has gone, a quiet end): a setting given twice, an argument Hydra's grammar cannot read, a name
the file system cannot take, `~` in the output root, a config dir with a !!python tag, zero where a positive
number is needed."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import REPO, cdb_run
from helpers.faults import TINY, one_line
from helpers.forked import run_module


def test_a_setting_given_twice_trains_its_last_value_in_a_folder_named_by_it(mnist_dir, tmp_path):
    r = cdb_run(tmp_path, "loss=ce", *TINY, "trainer.length=400", "trainer.length=3", data=mnist_dir)
    assert r.returncode == 0, r.stderr
    (run,) = [p.parent for p in (tmp_path / "out").rglob("metrics.json")]
    assert "trainer.length=3" in str(run) and "trainer.length=400" not in str(run) and "trainer.length=2" not in str(run)
    assert [json.loads(line)["unit"] for line in (run / "log.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_an_argument_hydra_cannot_read_is_one_line_with_the_quoted_form(mnist_dir, tmp_path):
    one_line(cdb_run(tmp_path, "loss=ce", *TINY, "name=日本語", data=mnist_dir),
             "'name=日本語' is not a valid override: write key=value, and quote a value with other characters")
    assert not (tmp_path / "out").exists()


def test_a_name_longer_than_a_file_name_is_refused_before_any_folder_is_made(mnist_dir, tmp_path):
    one_line(cdb_run(tmp_path, "loss=ce", *TINY, "name=" + "a" * 300, data=mnist_dir),
             "is not allowed: a folder name of at most 255 bytes (this one has 300)")
    assert not (tmp_path / "out").exists()


def test_a_tilde_in_the_output_root_means_the_home_folder(mnist_dir, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "CDB_OUTPUT_ROOT": "~/x", "PYTHONPATH": str(REPO),
           "CDB_DATA_ROOT": str(mnist_dir), "OMP_NUM_THREADS": "1"}
    r = run_module("cdb.cli", ["loss=ce", *TINY], env, tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert list((home / "x").rglob("metrics.json")) and not (tmp_path / "~").exists()
    env["CDB_OUTPUT_ROOT"] = "~no_such_user_here/x"
    r = run_module("cdb.cli", ["loss=ce", *TINY], env, tmp_path, timeout=300)
    one_line(r, "CDB_OUTPUT_ROOT='~no_such_user_here/x' is not allowed: ~no_such_user_here is no user's home folder")
    assert not (tmp_path / "~no_such_user_here").exists()


def test_a_python_tag_in_a_config_dir_is_one_line_and_never_runs(tmp_path):
    (tmp_path / "conf" / "loss").mkdir(parents=True)
    marker = tmp_path / "ran"
    evil = tmp_path / "conf" / "loss" / "evil.yaml"  # a loss of the user's own, which the command chooses
    evil.write_text(f'name: !!python/object/apply:os.system ["touch {marker}"]\n')
    one_line(cdb_run(tmp_path, "--config-dir", str(tmp_path / "conf"), "loss=evil", *TINY),
             f"--config-dir {tmp_path / 'conf'}: {evil} cannot be read as plain YAML")
    assert not marker.exists()


@pytest.mark.parametrize("cmd", [["-m", "cdb.cli", "--cfg", "job"], ["-m", "cdb", "--help"]])
def test_output_into_a_closed_pipe_ends_quietly(cmd):
    """The reader is gone before the command writes (`... | true`): no BrokenPipeError traceback, exit 0."""
    r = subprocess.run(f"(sleep 1; '{sys.executable}' {' '.join(cmd)}; echo rc=$? >&2) | true", shell=True, cwd=REPO,
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert r.stderr.strip() == "rc=0", r.stderr


@pytest.mark.parametrize("flag", ["--length", "--lr", "--batch-size"])
def test_decouple_refuses_zero_as_it_refuses_negatives(tmp_path, flag):
    r = run_module("cdb", ["decouple", str(tmp_path), "--method", "crt", flag, "0"], os.environ, REPO, timeout=300)
    one_line(r, f"{flag} 0 is not allowed: a number > 0 (leave it out for the default)", prog="cdb-decouple")
