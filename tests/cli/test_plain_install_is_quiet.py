"""A plain install (no cdb-loss[tune] extra) runs cdb-run without Hydra's plugin-scan warning: the tune sweeper
imports hydra-optuna-sweeper only when it is used."""
import os
import subprocess
import sys

from helpers import REPO

# what a plain `pip install cdb-loss` lacks, hidden from this process (None in sys.modules: `import` fails as if absent)
WITHOUT_TUNE = """
import sys
for m in ("hydra_plugins.hydra_optuna_sweeper", "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper", "optuna"):
    sys.modules[m] = None
sys.argv = ["cdb-run", *sys.argv[1:]]
from cdb.cli.run import main
main()
"""


def run_without_tune(tmp_path, mnist_dir, *args):
    env = {**os.environ, "CDB_OUTPUT_ROOT": str(tmp_path / "out"), "CDB_DATA_ROOT": str(mnist_dir),
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", WITHOUT_TUNE, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


def test_dry_run_without_the_tune_extra_prints_no_warning(tmp_path, mnist_dir):
    r = run_without_tune(tmp_path, mnist_dir, "dry_run=true")
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr and "tune_sweeper" not in r.stderr, r.stderr
    assert "dataset mnist_imbalanced" in r.stdout


def test_the_tune_sweeper_without_its_extra_is_one_line_naming_the_extra(tmp_path, mnist_dir):
    r = run_without_tune(tmp_path, mnist_dir, "-m", "hydra/sweeper=tune", "loss=ce")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["cdb-run: error: hydra/sweeper/optuna needs the hydra-optuna-sweeper "
                                             "plugin, which is not installed: pip install 'cdb-loss[tune]'"]
    assert not (tmp_path / "out").exists()  # refused before any run directory
