"""scripts/gpu_check.sh (the GPU issue's one prepared script) runs every step at toy sizes on this CPU."""
import json
import re
import os
import subprocess
import sys

import pytest

from helpers import REPO


@pytest.mark.slow
def test_gpu_check_tiny_runs_every_step(mnist_dir, tmp_path):
    out, runs = tmp_path / "gpu", tmp_path / "runs"
    env = {**os.environ, "OUT": str(out), "RUNS": str(runs), "CDB_DATA_ROOT": str(mnist_dir), "OMP_NUM_THREADS": "1",
           "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--tiny"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    log = (out / "gpu_check.log").read_text()
    # 1. the pack bench of both MNIST networks: K = 1, 2 in each layout with a per-run speed-up and % of sgemm
    bench = json.loads((out / "bench.json").read_text())
    assert [(c["model"], c["k"]) for c in bench["cases"]] == [(m, k) for m in ("lenet5", "lenet_ren") for k in (1, 2, 1, 2)]
    assert all("pct_sgemm" in c for c in bench["cases"]) and set(bench["default_pack"]["models"]) == {"lenet5", "lenet_ren"}
    # 2. the ResNet-32 pack bench: its own cases and pack=auto's choice for it
    resnet = json.loads((out / "bench_resnet32.json").read_text())
    assert {c["model"] for c in resnet["cases"]} == {"resnet32"} and [c["k"] for c in resnet["cases"]] == [1, 2, 1, 2]
    assert "model=resnet32" in log and set(resnet["default_pack"]["models"]) == {"resnet32"}
    # 3. the Table 2 sweep: 7 tau x 2 seeds packed, all finished, timed, and the table written from them
    assert "14 runs set up, 14 started, 14 finished, 14 validation rows (one per 50 steps)" in log
    assert "the 70-run table would take" in log and "table2 progress: time per run-step" in log
    progress = (out / "table2_progress.md").read_text()
    assert "final" in progress and "14 runs started, 14 validation rows" in progress and "run.log" in progress
    table = (out / "table2.md").read_text()
    assert "from 14 finished runs" in table
    assert re.search(r"\(2(, [0-2] collapsed)?\) · paper 2\.59 ± 0\.44", table)  # tau 0.5, r 0.99: 2 seeds
    assert len(list(runs.rglob("metrics.json"))) == 14
    # 4. the CIFAR-100-LT whole-run timing
    assert json.loads((out / "bench_cifar_lt.json").read_text())["epochs"] == 1
    # 5. Table 4's tau sweep as one pack against one run alone (--quick: 2 tau, 1 epoch, 422 images)
    sweep = json.loads((out / "cifar_lt_sweep.json").read_text())
    assert sweep["pack"]["runs"] == 2 and sweep["pack"]["epochs_done"] == sweep["alone"]["epochs_done"] == 1
    assert sweep["per_run_speedup"] > 0 and "Per-run speed-up of the pack" in log
    summary = (out / "summary.md").read_text()
    assert all(h in summary for h in ("# Speed: LeNet-5", "# Speed: ResNet-32", "# Table 4's tau sweep", "Table 2"))
    assert "done (exit 0)" in log.splitlines()[-1]
    assert len(list(out.iterdir())) <= 8   # the device returns at most 8 files
