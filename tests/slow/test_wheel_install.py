"""A regular (non-editable) install finds its configs: build a wheel, install it in a fresh venv, run outside the repo."""
import subprocess

import pytest

from helpers import REPO
from helpers.wheel import wheel_venv


@pytest.mark.slow
def test_wheel_in_fresh_venv_runs_from_outside_the_repo(tmp_path, mnist_dir):
    py, work, env = wheel_venv(tmp_path)
    venv = py.parent.parent
    env.update(CDB_DATA_ROOT=str(mnist_dir), CDB_OUTPUT_ROOT=str(work / "outputs"))
    where = subprocess.run([str(py), "-c", "import cdb.config as c; print(c.__file__); print(c.config_dir())"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    lines = where.stdout.split()
    assert lines[0].startswith(str(venv)) and lines[1].startswith(str(venv)), where.stdout
    cli = venv / "bin" / "cdb-run"
    h = subprocess.run([str(cli), "--help"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert h.returncode == 0 and "dataset" in h.stdout, h.stderr
    # python -m cdb from outside the repo: the sub-commands, and run --help lists the installed config groups
    m = subprocess.run([str(py), "-m", "cdb", "--help"], cwd=work, env=env, capture_output=True, text=True,
                       timeout=300)
    assert m.returncode == 0 and "usage: python -m cdb COMMAND" in m.stdout and "figures" in m.stdout, m.stderr
    mh = subprocess.run([str(py), "-m", "cdb", "run", "--help"], cwd=work, env=env, capture_output=True, text=True,
                        timeout=300)
    losses = ", ".join(sorted(p.stem for p in (REPO / "configs" / "loss").glob("*.yaml")))
    assert mh.returncode == 0 and f"\nloss: {losses}\n" in mh.stdout, mh.stdout + mh.stderr
    # the tuned search's configs ship too: its sweeper, seeded sampler and the loss's search space (search_space/)
    tune = subprocess.run([str(cli), "experiment=tune_mnist", "loss=cdb", "--cfg", "hydra"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert tune.returncode == 0, tune.stderr
    for needle in ("tune_sweeper.TuneSweeper", "TPESampler", "loss.tau: choice(dynamic", "trainer.lr: tag(log"):
        assert needle in tune.stdout, (needle, tune.stdout[-3000:])
    for script in ("cdb-table", "cdb-figures", "cdb-eval"):
        assert (venv / "bin" / script).is_file(), script
    r = subprocess.run([str(cli), "trainer.length=1", "trainer.progress=false"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    metrics = list((work / "outputs").rglob("metrics.json"))
    assert len(metrics) == 1 and "trainer.length=1" in str(metrics[0])
    t = subprocess.run([str(py), "-m", "cdb", "table", "compare", "--runs", "outputs", "--out", "-"], cwd=work,
                       env=env, capture_output=True, text=True, timeout=300)
    assert t.returncode == 0 and "trainer.length=1" in t.stdout and "test error" in t.stdout, t.stderr
    assert not (REPO / "outputs").exists() or not list((REPO / "outputs").rglob("trainer.length=1"))
