"""Packaging: pyproject.toml lists every config folder as a package and an SPDX license, and building the wheel
(what `pip install` shows) prints no setuptools warning."""
from __future__ import annotations

import subprocess
import sys
import tomllib

from helpers import REPO


def test_packaging_lists_every_config_folder_and_an_spdx_license():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"  # an SPDX string: the TOML table form makes setuptools warn
    packages = set(meta["tool"]["setuptools"]["packages"])
    folders = {"cdb_configs" + "".join("." + part for part in d.relative_to(REPO / "configs").parts)
               for d in (REPO / "configs").rglob("*") if d.is_dir() and list(d.glob("*.yaml"))}
    assert folders <= packages, folders - packages


def test_building_the_wheel_prints_no_setuptools_warning(tmp_path):
    """What `pip install` shows: build a wheel from a copy of the sources (about a second) and read its output."""
    import shutil

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("cdb", "configs", "docs", "hydra_plugins"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                        str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    # setuptools' BuildBackendWarning / SetuptoolsDeprecationWarning blocks (the ~350 lines) are gone
    assert "Warning" not in out, [ln for ln in out.splitlines() if "Warning" in ln][:5]
