"""`python -m MODULE ARGS` as a fresh process, without paying Python's and torch's start-up each time.

A forkserver (multiprocessing's) imports torch, Hydra and cdb's command-line modules once; each command then runs
in a process forked from it: its own process (own globals, signal handlers, exit status, file descriptors 1 and
2 going to files the test reads), started in milliseconds instead of the ~2 CPU-seconds of `import torch`.
What a test sees is what `subprocess.run([sys.executable, "-m", MODULE, *ARGS], env=ENV, cwd=CWD,
capture_output=True, text=True)` gives: a CompletedProcess with the exit status, stdout and stderr.
"""
from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.forkserver
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

# what every command imports anyway; modules imported here are shared (copy-on-write) by every forked command
PRELOAD = ["torch", "torchvision", "hydra", "omegaconf", "cdb.cli.run", "cdb.cli.table", "cdb.build"]
_context = None


def _server():
    """The forkserver context, started on first use with one OpenMP thread (as every test command sets) and this
    checkout on its path. The test process's own environment is left as it was (a PYTHONPATH left there would, for
    one, make pip see the checkout's metadata as an installed cdb-loss)."""
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        repo = Path(__file__).resolve().parents[2]
        saved = dict(os.environ)
        os.environ["OMP_NUM_THREADS"] = "1"  # read by OpenMP when torch loads, i.e. in the server
        # the server imports PRELOAD from this checkout (Python 3.11's forkserver ignores the caller's sys.path)
        os.environ["PYTHONPATH"] = os.pathsep.join([str(repo), str(repo / "tests"), saved.get("PYTHONPATH", "")])
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        _context = ctx
    return _context


def _child(module: str, args: list[str], env: dict, cwd: str, out: str, err: str) -> None:
    """In the forked process: become `python -m module args` with env and cwd, fds 1 and 2 to the files out, err."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(f, fd)
        os.close(f)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)
    code = 0
    try:
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:  # as the interpreter exits: an int is the status, anything else is printed, status 1
        code = exc.code or 0
        if not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    except BaseException:  # what the interpreter does with an uncaught exception: traceback, exit status 1
        import traceback

        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # a forked child leaves through os._exit, which skips them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_module(module: str, args: list[str], env: dict, cwd: str | Path, timeout: float = 600
               ) -> subprocess.CompletedProcess:
    """`python -m module *args` in a forked process; its CompletedProcess (text stdout and stderr)."""
    ctx = _server()
    with tempfile.TemporaryDirectory(prefix="cdb-test-cmd-") as d:
        out, err = os.path.join(d, "stdout"), os.path.join(d, "stderr")
        p = ctx.Process(target=_child, args=(module, list(args), dict(env), str(cwd), out, err))
        p.start()
        p.join(timeout)
        if p.is_alive():
            p.kill()
            p.join()
            raise subprocess.TimeoutExpired([sys.executable, "-m", module, *args], timeout)
        read = lambda path: Path(path).read_text(encoding="utf-8", errors="backslashreplace")  # noqa: E731
        return subprocess.CompletedProcess([sys.executable, "-m", module, *args], p.exitcode, read(out), read(err))
