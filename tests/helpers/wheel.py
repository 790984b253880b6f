"""The package as a user installs it: the wheel built from this checkout, in a fresh venv outside the repository."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from helpers import REPO


def clean_source(to: Path) -> Path:
    """The checkout's files as a clone has them (tracked, and new files git does not ignore), copied to `to`: an
    in-tree build reuses the ignored build/ folder, where files since renamed or deleted stay and would ship."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():  # a tracked file deleted in the working tree is skipped
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, to / name)
    return to


def wheel_venv(tmp_path: Path) -> tuple[Path, Path, dict]:
    """Build the wheel, install it into a fresh venv (torch & co. from this venv's site-packages through a .pth, which
    adds the folder without processing its .pth files, so this venv's editable cdb stays invisible: nothing is
    downloaded) and make an empty working folder: (the venv's python, the folder, an environment without PYTHONPATH)."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(clean_source(tmp_path / "source"))], check=True, capture_output=True, timeout=600)
    wheel = next(dist.glob("cdb_loss-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    return py, work, {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
