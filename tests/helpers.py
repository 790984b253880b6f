"""Test helpers: run cdb-run the way a user does, and compose configs in-process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FAST = ["trainer.unit=step", "trainer.length=6", "trainer.eval_every=3", "trainer.lr=0.01",
        "trainer.progress=false", "trainer.milestones=[]"]


def cdb_run(args: list[str], data_root, out_root, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "CDB_DATA_ROOT": str(data_root), "CDB_OUTPUT_ROOT": str(out_root),
           "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", "cdb.cli", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def compose(overrides: list[str]):
    from hydra import compose as hcompose, initialize_config_dir

    from cdb.cli import config_dir

    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return hcompose("config", overrides=overrides)
