"""scripts/gpu_check.sh --tiny, step 3 only, stopped by SIGTERM in the middle of training: the output folder holds
each run's rows and a time per step with the table's estimate, written while the sweep ran, and the log says so."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from helpers import REPO


@pytest.mark.slow
def test_a_kill_during_step_3_leaves_rows_and_a_time_per_step(mnist_dir, tmp_path):
    out, runs = tmp_path / "gpu", tmp_path / "runs"
    env = {**os.environ, "OUT": str(out), "RUNS": str(runs), "CDB_DATA_ROOT": str(mnist_dir), "OMP_NUM_THREADS": "1",
           "PYTHON": sys.executable, "STEPS": "3", "TINY_LENGTH": "5000", "TABLE2_LIMIT": "1500"}
    proc = subprocess.Popen(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--tiny"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    progress = out / "table2_progress.md"
    deadline = time.time() + 900
    try:
        while time.time() < deadline:  # until the 14 runs have each written a row (one per 50 steps)
            text = progress.read_text() if progress.exists() else ""
            m = re.search(r"(\d+) validation rows in all", text)
            if m and int(m.group(1)) >= 14:
                break
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            time.sleep(2)
        else:
            pytest.fail("no validation row within 900 s")
        proc.send_signal(signal.SIGTERM)  # the script itself, as `timeout` or a person would stop it
        stdout, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stdout[-3000:]
    text = progress.read_text()
    assert "final: the sweep process has exited" in text
    rows = dict(re.findall(r"^\| (\S+) \| (\d+) \|$", text, re.M))
    assert len(rows) == 14 and all(int(v) >= 1 for v in rows.values())
    assert re.search(r"time per run-step: [\d.]+ ms", text) and "the 70-run table" in text
    log = (out / "gpu_check.log").read_text()
    assert "(stopped by a signal)" in log and re.search(r"table2 progress: time per run-step: [\d.]+ ms", log)
    assert "later steps skipped" in log.splitlines()[-1]
