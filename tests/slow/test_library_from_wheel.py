"""The library from a regular install: build the wheel, install it in a fresh venv outside the repository, and run
the README's snippet and the example there."""
import re
import subprocess
from pathlib import Path

import pytest

from helpers import REPO
from helpers.wheel import wheel_venv


@pytest.mark.slow
def test_readme_snippet_runs_from_the_wheel_in_a_fresh_venv(tmp_path):
    py, work, env = wheel_venv(tmp_path)
    venv = py.parent.parent
    # the README's first Python block that imports CDBLoss, as a reader copies it
    snippet = re.search(r"```python\n((?:import torch\n)?from cdb import CDBLoss\n.*?)```",
                        (REPO / "README.md").read_text(), re.S)[1]
    (work / "snippet.py").write_text(snippet)
    r = subprocess.run([str(py), "snippet.py"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.strip() == "tensor([0.0105, 0.6133, 2.3761]) 1.954"
    light = subprocess.run([str(py), "-c", "import sys, cdb; print(cdb.__file__); "
                            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'hydra', 'omegaconf'}))"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=300, check=True)
    where, heavy = light.stdout.splitlines()
    assert where.startswith(str(venv)) and heavy == "[]"
    assert (Path(where).parent / "py.typed").is_file()
    # the collapse line's "what to try" names docs/own-data.md: the wheel ships it, and the line names that file
    hint = subprocess.run([str(py), "-c", "from cdb.core.metrics import docs_path; print(docs_path('own-data.md'))"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300, check=True).stdout.strip()
    assert hint.startswith(str(venv)) and "## When a run collapses" in Path(hint).read_text()
    example = subprocess.run([str(py), str(REPO / "examples" / "train_with_cdb_loss.py")], cwd=work, env=env,
                             capture_output=True, text=True, timeout=300)
    assert example.returncode == 0 and example.stdout.count("\n") == 10, example.stderr
