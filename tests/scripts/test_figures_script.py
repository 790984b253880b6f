"""scripts/figures.py as a command: it writes Figure 2 as a PNG that records the command that made it."""
from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO
from helpers.report import is_png_with_command


def test_script_entry_point(tmp_path):
    pytest.importorskip("matplotlib")
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "figures.py"), "figure2", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert is_png_with_command(tmp_path / "figure2.png", f"python scripts/figures.py figure2 --out {tmp_path}")
