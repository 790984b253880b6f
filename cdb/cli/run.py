"""`cdb-run [overrides]` (and `python -m cdb run`, `python -m cdb.cli`): train one run, or a sweep with -m.

Hydra composes the config once and calls `task` once per job; the run itself is built and trained by cdb.build. A
dry run is answered before Hydra starts (cdb.cli.dryrun). Errors the user can act on are one line, exit 2: those of
cdb (CdbError), and Hydra's and OmegaConf's own composition errors (cdb.cli.composition).
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra_plugins.cdb_pack_launcher.pack_launcher import PackLauncher
from omegaconf import DictConfig

from cdb.cli import composition, dryrun
from cdb.cli.pipes import quiet_broken_pipe
from cdb.config import config_dir
from cdb.core.errors import DEBUG_ENV, CdbError, Interrupted, Terminated, debug_enabled, user_message
from cdb.launch.callbacks import FAILED_KEY, Preflight
from cdb.rundir.claims import remove_empty, remove_made
from cdb.train.heap import keep_heap


def register_pack_launcher() -> None:
    """Register cdb's pack launcher (and, where cdb-loss[tune] is installed, its tune sweeper) with Hydra by hand.

    Hydra finds plugins by walking the `hydra_plugins` namespace package on sys.path; an editable install
    (`pip install -e .`, what `make venv` does) maps our part of it through an import hook that this walk
    does not see, so `cdb-run -m` outside the repository root would fail with "Unknown plugin class".
    """
    Plugins.instance().register(PackLauncher)
    if importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None:
        from hydra_plugins.cdb_pack_launcher.tune_sweeper import TuneSweeper  # optional dependency (cdb-loss[tune])

        Plugins.instance().register(TuneSweeper)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _terminated(signum, frame) -> None:
    """The first stop signal ends the command like Ctrl-C (message, what was logged kept, lock released); the ones
    that follow are ignored, so that a second signal cannot break that clean-up into a traceback."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signal.Signals(signum).name)


def task(cfg: DictConfig) -> dict | None:
    """One Hydra job: check, claim, build and train; a foreseen error is one line (a sweep goes on)."""
    # torch comes with these: at top they add 9.5 s (median of 7, loaded machine) to `cdb-run --help` and to a
    # one-line error (tests/cli/test_entry_points.py checks that `import cdb.cli.run` imports no torch)
    from cdb.build import checks, run_in
    from cdb.launch.objective import failure_value, job_value

    global _started
    _started = True
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode.name == "MULTIRUN"
    logging.captureWarnings(True)  # warnings go to run.log (and, as warnings, to the console)
    try:
        checks.check_run(cfg, hydra_cfg.overrides.task)
        metrics = run_in(cfg, run_dir)
    except (Exception, KeyboardInterrupt) as exc:
        line = user_message(exc)
        if Preflight.made is not None and not multirun:  # what this command made for a run that never started
            remove_made(Preflight.made, under=run_dir)
        else:
            remove_empty(run_dir)  # the directory Hydra made for a run that never started
        if line is None or debug_enabled():
            if not multirun:
                raise  # a bug, or debug on: Hydra prints the traceback and exits 1
            traceback.print_exc()
            line = line or f"{type(exc).__name__}: {exc}"
        else:
            print(f"cdb-run: error: {line}", file=sys.stderr)
        if isinstance(exc, (Terminated, Interrupted)) and exc.exit_code > 128:
            raise SystemExit(exc.exit_code) from None  # SIGTERM, SIGHUP: the run (and a sweep) ends as "terminated"
        if isinstance(exc, KeyboardInterrupt):
            raise SystemExit(130) from None  # Ctrl-C ends a sweep too
        if isinstance(exc, Interrupted) and multirun:
            raise SystemExit(2) from None
        if multirun:
            # one bad job does not stop the sweep (nor a tuned study: a failed trial); the summary lists it
            return failure_value(hydra_cfg, line, {FAILED_KEY: line})
        raise SystemExit(2) from None
    from cdb.train.distributed import is_main_process  # torch: see above

    if not is_main_process():
        return metrics
    from cdb.core.metrics import outcome_lines  # torch: see above

    for line in outcome_lines(metrics):  # the result, then (if it collapsed) what to try
        print(f"{run_dir}: {line}")
    return job_value(hydra_cfg, metrics, run_dir)  # the metrics; in a tuned study (Optuna) the objective


_started = False  # whether Hydra called `task`: an error before that is the command line's (composition)


@contextlib.contextmanager
def _one_line_errors(argv: list[str]):
    """CdbError, and an error Hydra or OmegaConf raised while composing, as `cdb-run: error: <line>`, exit 2; a bug
    (or any error with debug on) keeps its traceback."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001  (sorted below: one line, or re-raised)
        line = user_message(exc) if isinstance(exc, CdbError) else None if _started else composition.one_line(exc, argv)
        if line is None or debug_enabled():
            raise
        print(f"cdb-run: error: {line}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> None:
    """`cdb-run [overrides]`: see `cdb-run --help` and docs/commands.md."""
    argv = sys.argv[1:] if argv is None else argv
    argv = ["hydra.verbose=true" if a in ("-v", "--verbose") else a for a in argv]  # -v: Hydra's debug switch
    if any(a.startswith("hydra.verbose=") and a.split("=", 1)[1].lower() not in ("false", "null", "[]", "")
           for a in argv):
        os.environ[DEBUG_ENV] = "1"  # inherited by spawned DDP processes
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors; _one_line_errors says them in one line
    try:
        with _one_line_errors(argv), quiet_broken_pipe():
            argv = composition.resolve_shown_config(composition.check_command_line(argv))
            argv = composition.expand_home(argv)
            composition.check_config_dir(argv)
            dry, argv = dryrun.requested(argv)
            if dry:  # before Hydra starts: no run directory, no .hydra/
                return dryrun.main(argv)
            if os.environ.get("RANK", "0") != "0":  # torchrun: only rank 0 writes .hydra/ and the job log
                from cdb.train.distributed import hydra_rank_overrides  # torch: only torchrun's other ranks

                argv = [*argv, *hydra_rank_overrides()]
            sys.argv = [sys.argv[0], *argv]
            for sig in STOP_SIGNALS:  # like Ctrl-C: message, what was logged kept, lock released (not where ignored)
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    signal.signal(sig, _terminated)
            keep_heap()  # freed activations stay in the process (CDB_KEEP_HEAP=0: off; cdb/train/heap.py)
            register_pack_launcher()
            hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(task)()
    except KeyboardInterrupt as exc:  # a signal while Hydra starts or ends, outside any run (task reports its own)
        if debug_enabled():
            raise
        print(f"cdb-run: error: {user_message(exc)}", file=sys.stderr)
        logging.disable(logging.INFO)  # Hydra's own console logging is on here: no exit-time chatter after the line
        raise SystemExit(exc.exit_code if isinstance(exc, Terminated) else 130) from None
