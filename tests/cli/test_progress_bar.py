"""trainer.progress=auto as a user meets it: a run whose stderr is a terminal (a pseudo-terminal here)
shows the progress bar; the same run under CI, or as a sweep (-m, the pack launcher), does not; trainer.progress=false
never does. The rule itself: tests/unit/train/test_progress_rule.py."""
from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from helpers import REPO

TWO_STEPS = ["loss=ce", "trainer.unit=step", "trainer.length=2", "trainer.eval_every=1", "trainer.milestones=[]",
             "threads=1"]
BAR = "2/2 ["    # tqdm's count at the end of the bar: 2 of 2 steps


def on_a_terminal(tmp_path, mnist_dir, *args: str, **env_extra: str) -> tuple[int, str]:
    """`python -m cdb.cli ARGS` with stderr on a pseudo-terminal: (exit code, what the terminal showed)."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update({"CDB_OUTPUT_ROOT": str(tmp_path / "out"), "CDB_DATA_ROOT": str(mnist_dir), "PYTHONPATH": str(REPO),
                "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0", **env_extra})
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100, as a terminal window
    proc = subprocess.Popen([sys.executable, "-m", "cdb.cli", *args], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    shown = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:      # EIO: the process closed the terminal
            break
        if not chunk:
            break
        shown.append(chunk)
    os.close(master)
    return proc.wait(timeout=300), b"".join(shown).decode(errors="replace")


@pytest.mark.parametrize("args, env, bar", [
    ([], {}, True),                                         # a user at a terminal
    (["experiment=demo"], {}, True),                        # the demo (its old recipe set progress: false)
    ([], {"CI": "true"}, False),                            # CI
    (["-m"], {}, False),                                    # a sweep through the pack launcher
    (["trainer.progress=false"], {}, False),                # asked for no bar
])
def test_progress_bar_on_a_terminal_only(mnist_dir, tmp_path, args, env, bar):
    code, shown = on_a_terminal(tmp_path, mnist_dir, *args, *TWO_STEPS, **env)
    assert code == 0, shown[-2000:]
    assert (BAR in shown) is bar, shown[-2000:]
