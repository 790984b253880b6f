"""torchrun end to end (slow): `torchrun --nproc_per_node=2 -m cdb.cli ...` equals `python -m cdb.cli ...`."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import REPO


@pytest.mark.slow
def test_torchrun_two_processes_end_to_end(mnist_dir, tmp_path):
    """`torchrun --nproc_per_node=2 -m cdb.cli ...` equals `python -m cdb.cli ...` (rank 0 writes everything once)."""
    args = [f"data_root={mnist_dir}", "dataset.val_per_class=100", "dataset.test_per_class=100",
            "trainer.unit=step", "trainer.length=20", "trainer.eval_every=10", "trainer.lr=0.05",
            "trainer.progress=false", "trainer.device=cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    "-m", "cdb.cli", *args, f"output_root={tmp_path / 'ddp'}"], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=600)
    subprocess.run([sys.executable, "-m", "cdb.cli", *args, f"output_root={tmp_path / 'one'}"], cwd=REPO, env=env,
                   check=True, capture_output=True, timeout=600)
    (ddp,), (one,) = (list((tmp_path / k).rglob("metrics.json")) for k in ("ddp", "one"))
    assert ddp.parent.relative_to(tmp_path / "ddp") == one.parent.relative_to(tmp_path / "one")
    a, b = json.loads(ddp.read_text()), json.loads(one.read_text())
    assert a["test"]["per_class_accuracy"] == b["test"]["per_class_accuracy"]
    assert a["final_weights"] == b["final_weights"]
    logs = [[json.loads(x) for x in (p.parent / "log.jsonl").read_text().splitlines()] for p in (ddp, one)]
    assert [r["val_class_accuracy"] for r in logs[0]] == [r["val_class_accuracy"] for r in logs[1]]
    assert len(logs[0]) == 2  # one row per validation: rank 1 wrote nothing
