"""The reliability checks' shared parts: a tiny run's settings, the one-line error a user must see, and a
hostile pickle (docs/reliability.md lists every fault and its one line).
"""
from __future__ import annotations

import os
import subprocess


TINY = ["trainer.unit=step", "trainer.length=2", "trainer.eval_every=1", "trainer.progress=false",
        "trainer.milestones=[]", "threads=1"]


def one_line(r: subprocess.CompletedProcess, needle: str, prog: str = "cdb-run") -> str:
    """`r` was refused (exit 2) in one line, `<prog>: error: ...`, that contains `needle`."""
    err = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"{prog}: error: ") and needle in err, err
    return err


class Hostile:
    """Unpickling it runs a shell command: what a malicious file does."""

    def __init__(self, cmd: str = "true"):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))
