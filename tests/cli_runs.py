"""Helper for CLI tests: one `python -m cdb.cli -m ...` sweep in a subprocess, its run directories by loss."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def multirun(tmp: Path, data: Path, *overrides: str) -> dict[str, Path]:
    """Run `python -m cdb.cli -m ...` once; return {loss name: run directory}."""
    env = {**os.environ, "CDB_DATA_ROOT": str(data), "CDB_OUTPUT_ROOT": str(tmp), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "cdb.cli", "-m", "trainer.progress=false", *overrides],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "error" not in proc.stderr.lower(), proc.stderr[-3000:]
    runs = {}
    for cfg in tmp.rglob("seed=*/config.yaml"):
        runs[yaml.safe_load(cfg.read_text())["loss"]["name"]] = cfg.parent
    return runs
