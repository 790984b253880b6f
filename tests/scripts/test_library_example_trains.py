"""examples/train_with_cdb_loss.py, the library's plain-loop example, runs as a user runs it and CDB updates its
weights after every validation."""
import os
import re
import subprocess
import sys

import pytest

from helpers import REPO


def test_example_trains_and_updates_the_weights_each_epoch(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, str(REPO / "examples" / "train_with_cdb_loss.py")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    rows = [re.match(r"epoch (\d+): val accuracy ([\d.]+), tau ([\d.]+), weights \[(.*)\]$", line)
            for line in r.stdout.splitlines()]
    assert len(rows) == 10 and all(rows), r.stdout
    weights = [[float(w) for w in m[4].split(",")] for m in rows]
    for m, w in zip(rows, weights):
        assert 0 < float(m[3]) <= 2.0  # the paper's dynamic tau lies in (0, 2]
        assert sum(w) == pytest.approx(3.0, abs=0.01)  # mean normalisation: sum C (printed to 3 decimals)
    assert len({tuple(w) for w in weights}) > 1  # updated after validations, not stuck at the first weights
    assert float(rows[-1][2]) > 0.6  # well above chance (1/3) on the balanced validation set
