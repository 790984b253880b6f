"""A disk full from the start (a file-size limit of 0 makes every write fail as a full disk does): each command says
in one line which file it could not write, with its own advice, and leaves no half-made run behind."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import pytest

from helpers import REPO
from helpers.faults import TINY, one_line


def _no_space():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def _run(args, tmp_path, mnist_dir):
    env = {**os.environ, "CDB_DATA_ROOT": str(mnist_dir), "CDB_OUTPUT_ROOT": str(tmp_path / "out"),
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-c", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=_no_space)


def test_cdb_run_names_the_file_and_leaves_nothing(tmp_path, mnist_dir):
    r = _run(["from cdb.cli.run import main; main()", "loss=ce", *TINY], tmp_path, mnist_dir)
    err = one_line(r, "could not write ")
    assert "/seed=0/.lock: File too large; free space there (or set output_root / CDB_OUTPUT_ROOT elsewhere)" in err
    assert "Logging error" not in r.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("prog, args, file", [
    ("cdb-table", ["from cdb.cli.table import main; main()", "table1", "--runs", "."], "table1.md"),
    ("cdb-figures", ["from cdb.cli.figures import main; main()", "figure2"], "figure2.png"),
])
def test_reports_name_the_file_with_their_own_advice(tmp_path, mnist_dir, prog, args, file):
    err = one_line(_run([*args, "--out", "reports"], tmp_path, mnist_dir),
                   f"could not write reports/{file}: File too large; free space there (or give another --out) and run "
                   "the command again", prog=prog)
    assert "resume=true" not in err and "CDB_OUTPUT_ROOT" not in err
