"""Entry points: `python -m cdb COMMAND` runs each console script, the console scripts resolve, the help
texts (`python -m cdb --help`, `cdb-run --help`, `make help`) list the config groups with every choice, and
the command line modules load without torch."""
from __future__ import annotations

import csv
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import FAST, REPO, cdb_run

GROUPS = ("dataset", "protocol", "model", "loss", "trainer", "experiment")


def python_m_cdb(args: list[str], cwd: Path, **env) -> subprocess.CompletedProcess:
    """`python -m cdb ARGS` from `cwd` (outside the repo), with this checkout on the path."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0", **env}
    return subprocess.run([sys.executable, "-m", "cdb", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=300)


def choices(group: str) -> list[str]:
    return sorted(p.stem for p in (REPO / "configs" / group).glob("*.yaml"))


def help_choices(group: str) -> list[str]:
    """What Hydra lists: the files plus the structured configs cdb.config registers (trainer/base: TrainerConfig)."""
    from hydra.core.config_store import ConfigStore

    import cdb.config  # noqa: F401  (registers them)

    stored = [n.removesuffix(".yaml") for n in ConfigStore.instance().repo.get(group, {}) if n.endswith(".yaml")]
    return sorted({*choices(group), *stored})


def test_console_scripts_resolve_and_match_the_sub_commands():
    tomllib = pytest.importorskip("tomllib")                              # Python >= 3.11
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    from cdb.__main__ import COMMANDS

    assert {script for _, _, script, _ in COMMANDS.values()} == set(scripts)
    for name, (module, function, script, _) in COMMANDS.items():
        assert scripts[script] == f"{module}:{function}", name            # same function either way
        assert callable(getattr(importlib.import_module(module), function))


def test_python_m_cdb_help_and_unknown_command(tmp_path):
    h = python_m_cdb(["--help"], tmp_path)
    assert h.returncode == 0 and "usage: python -m cdb COMMAND" in h.stdout
    for name in ("run", "table", "figures", "eval"):
        assert f"\n  {name} " in h.stdout
    bad = python_m_cdb(["tabel"], tmp_path)
    err = bad.stderr.strip()
    assert bad.returncode == 2 and err.startswith("cdb: error: 'tabel' is not a command") and len(err.splitlines()) == 1


def test_run_help_lists_every_group_and_choice_without_importing_torch(tmp_path):
    code = ("import atexit, sys; atexit.register(lambda: print('torch' in sys.modules, file=sys.stderr)); "
            "from cdb.__main__ import main; main(['run', '--help'])")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "False"                   # torch was never imported
    assert "usage: cdb-run" in r.stdout
    for group in GROUPS:
        assert f"\n{group}: {', '.join(help_choices(group))}\n" in r.stdout, group


def test_make_help_lists_every_group_and_choice():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    r = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = {line.split(":")[0].strip(): line.split(":", 1)[1].split() for line in r.stdout.splitlines()
             if line.startswith("  ") and ":" in line}
    for group in (*GROUPS, "hydra/launcher"):
        assert lines[group] == choices(group), group
    assert "demo\t" in r.stdout and "table1-quick\t" in r.stdout             # the targets are still listed


def test_python_m_cdb_run_then_table(mnist_dir, tmp_path):
    r = python_m_cdb(["run", "loss=ce", *FAST], tmp_path, CDB_DATA_ROOT=str(mnist_dir),
                     CDB_OUTPUT_ROOT=str(tmp_path / "outputs"))
    assert r.returncode == 0, r.stderr
    (metrics,) = (tmp_path / "outputs").rglob("metrics.json")
    assert metrics.parent.name == "seed=0" and metrics.parent.parent.name.startswith("loss=ce,")
    error = json.loads(metrics.read_text())["test"]["error"]
    assert yaml.safe_load((metrics.parent / "config.yaml").read_text())["loss"]["label"] == "CE"
    t = python_m_cdb(["table", "compare", "--runs", "outputs/*", "--out", "-", "--format", "csv"], tmp_path)
    assert t.returncode == 0, t.stderr
    rows = {(r["row"], r["col"]): r for r in csv.DictReader(io.StringIO(t.stdout))}
    cell = rows[(metrics.parent.parent.name, "test error")]               # row: the override name, no seed
    assert (cell["mean"], cell["std"], cell["n"]) == (f"{error:.4f}", "0.0000", "1")
    bad = python_m_cdb(["table", "table1", "--runs", "nowhere"], tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("cdb-table: error: --runs 'nowhere'")


def test_python_m_cdb_figures(tmp_path):
    pytest.importorskip("matplotlib")
    r = python_m_cdb(["figures", "figure2", "--out", "."], tmp_path)
    assert r.returncode == 0, r.stderr
    from PIL import Image

    with Image.open(tmp_path / "figure2.png") as img:
        assert img.info.get("Description") == "python -m cdb figures figure2 --out ."


def test_installed_cdb_run_finds_the_pack_launcher_outside_the_repo(tmp_path):
    """`cdb-run -m` as installed (an editable install's import hook hides our `hydra_plugins` part from Hydra's
    plugin scan; cdb.cli.run registers the launcher itself): the sweep reaches the launcher from any directory."""
    script = Path(sys.executable).with_name("cdb-run")
    if not script.exists():
        pytest.skip("cdb is not installed in this environment (no cdb-run next to the interpreter)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(CDB_DATA_ROOT=str(tmp_path / "no_data"), HYDRA_FULL_ERROR="0")
    r = subprocess.run([str(script), "-m", "seed=0,1", f"output_root={tmp_path / 'out'}"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert "Unknown plugin class" not in r.stderr
    assert "cdb-run: sweep: 0 ok, 2 failed" in r.stderr, r.stderr          # both jobs ran (and found no MNIST)
    assert r.returncode != 0


def test_help_works(tmp_path):
    r = cdb_run(tmp_path, "--help")
    assert r.returncode == 0 and "loss" in r.stdout and "dataset" in r.stdout


def test_cli_module_does_not_import_torch():
    code = "import sys, cdb.cli.run, cdb.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
