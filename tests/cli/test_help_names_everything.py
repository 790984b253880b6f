"""The help a user reads is complete: `make help` names every console script, docs/losses.md's table every loss
config, and `cdb-run --cfg job` shows each setting's value as the run reads it (no `${...}`), as its help says."""
import os
import re
import shutil
import subprocess
import tomllib

import pytest
import yaml

from helpers import REPO
from helpers.forked import run_module


def test_make_help_names_every_console_script():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    r = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "cdb-decouple" in scripts
    for script in scripts:
        assert re.search(rf"\b{script}\b", r.stdout), script


def test_the_loss_table_lists_every_loss_config():
    table = (REPO / "docs" / "losses.md").read_text()
    listed = set(re.findall(r"^\| `([a-z0-9_]+)` \|", table, re.M))
    configs = {p.stem for p in (REPO / "configs" / "loss").glob("*.yaml")}
    assert configs <= listed, configs - listed


def cdb_run_info(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "CDB_DATA_ROOT": "data"}
    return run_module("cdb.cli", list(args), env, REPO, timeout=120)


def test_cfg_job_shows_the_values_the_run_reads():
    r = cdb_run_info("--cfg", "job")
    assert r.returncode == 0, r.stderr
    assert "${" not in r.stdout
    cfg = yaml.safe_load(r.stdout)
    # P3's schedule, computed from the loss: 8000 steps, validation every 50, lr halved after 4000
    assert (cfg["trainer"]["length"], cfg["trainer"]["eval_every"], cfg["trainer"]["milestones"]) == (8000, 50, [4001])
    l2rw = yaml.safe_load(cdb_run_info("--cfg", "job", "loss=l2rw").stdout)
    assert l2rw["trainer"]["length"] == 4000
    assert "--resolve is implied" in cdb_run_info("--help").stdout
