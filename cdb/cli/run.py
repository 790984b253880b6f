"""`cdb-run [overrides]` (and `python -m cdb run`, `python -m cdb.cli`): train one run, or a sweep with -m.

The command line is checked here in one line per fault (cdb.cli.argv), a dry run is answered before Hydra starts
(cdb.cli.dryrun), and Hydra then composes the config and calls `task` once per job; the run itself is built and
trained by cdb.build.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import signal
import sys
import traceback
from pathlib import Path

from omegaconf import DictConfig

from cdb.cli import argv as cli_argv
from cdb.cli import dryrun
from cdb.cli.pipes import quiet_broken_pipe
from cdb.config import config_dir
from cdb.core.errors import DEBUG_ENV, CdbError, Interrupted, Terminated, debug_enabled, user_message


def register_pack_launcher() -> None:
    """Register cdb's pack launcher (and, where cdb[tune] is installed, its tune sweeper) with Hydra by hand.

    Hydra finds plugins by walking the `hydra_plugins` namespace package on sys.path; an editable install
    (`pip install -e .`, what `make venv` does) maps our part of it through an import hook that this walk
    does not see, so `cdb-run -m` outside the repository root would fail with "Unknown plugin class".
    """
    from hydra.core.plugins import Plugins
    from hydra_plugins.cdb_pack_launcher.pack_launcher import PackLauncher

    Plugins.instance().register(PackLauncher)
    if importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None:
        from hydra_plugins.cdb_pack_launcher.tune_sweeper import TuneSweeper

        Plugins.instance().register(TuneSweeper)


def _terminated(signum, frame) -> None:
    raise Terminated()


# The folders a single run's directory would create, found before Hydra makes it (cli.argv.run_dir_of): a run that
# fails removes those that it leaves empty, and nothing that existed before. None: not known (sweeps, torchrun ranks).
_MADE: list[Path] | None = None


def task(cfg: DictConfig) -> dict | None:
    """One Hydra job: check, claim, build and train; a foreseen error is one line (a sweep goes on)."""
    from hydra.core.hydra_config import HydraConfig

    from cdb.build import checks, run_in
    from cdb.launch.callbacks import FAILED_KEY
    from cdb.launch.objective import failure_value, job_value
    from cdb.rundir.claims import remove_empty, remove_made

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode.name == "MULTIRUN"
    logging.captureWarnings(True)  # warnings go to run.log (and, as warnings, to the console)
    try:
        checks.check_run(cfg, hydra_cfg.overrides.task)
        metrics = run_in(cfg, run_dir)
    except (Exception, KeyboardInterrupt) as exc:
        line = user_message(exc)
        if _MADE is not None and not multirun:  # what this command made for a run that never started
            remove_made(_MADE, under=run_dir)
        else:
            remove_empty(run_dir)  # the directory Hydra made for a run that never started
        if line is None or debug_enabled():
            if not multirun:
                raise  # a bug, or debug on: Hydra prints the traceback and exits 1
            traceback.print_exc()
            line = line or f"{type(exc).__name__}: {exc}"
        else:
            print(f"cdb-run: error: {line}", file=sys.stderr)
        if isinstance(exc, Terminated) or (isinstance(exc, Interrupted) and exc.exit_code == 143):
            raise SystemExit(143) from None  # SIGTERM: the run (and a sweep) ends as "terminated"
        if isinstance(exc, KeyboardInterrupt):
            raise SystemExit(130) from None  # Ctrl-C ends a sweep too
        if isinstance(exc, Interrupted) and multirun:
            raise SystemExit(2) from None
        if multirun:
            # one bad job does not stop the sweep (nor a tuned study: a failed trial); the summary lists it
            return failure_value(hydra_cfg, line, {FAILED_KEY: line})
        raise SystemExit(2) from None
    from cdb.train.distributed import is_main_process

    if not is_main_process():
        return metrics
    from cdb.core.metrics import outcome_lines

    for line in outcome_lines(metrics):  # the result, then (if it collapsed) what to try
        print(f"{run_dir}: {line}")
    return job_value(hydra_cfg, metrics, run_dir)  # the metrics; in a tuned study (Optuna) the objective


def main(argv: list[str] | None = None) -> None:
    """`cdb-run [overrides]`: see `cdb-run --help` and the README."""
    import hydra

    from cdb.rundir.claims import check_writable, missing_dirs

    argv = sys.argv[1:] if argv is None else argv
    argv = ["hydra.verbose=true" if a in ("-v", "--verbose") else a for a in argv]  # -v: Hydra's debug switch
    if cli_argv.debug_requested(argv):
        os.environ[DEBUG_ENV] = "1"  # inherited by spawned DDP processes
    if debug_enabled():
        os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        cli_argv.check_group_choices(argv)
        cli_argv.check_override_types(argv)
        dry, argv = dryrun.requested(argv)
        if dry:  # before Hydra starts: no run directory, no .hydra/
            return dryrun.main(argv)
        root = cli_argv.output_root(argv)
        if not cli_argv.asks_for_info(argv):
            cli_argv.check_run_path(argv, root)
            if root is not None:
                check_writable(root)
            if os.environ.get("RANK", "0") == "0" and not cli_argv.is_sweep(argv):
                global _MADE
                run_dir = cli_argv.run_dir_of(argv)
                _MADE = None if run_dir is None else missing_dirs(run_dir)
    except CdbError as exc:
        if debug_enabled():
            raise
        print(f"cdb-run: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if os.environ.get("RANK", "0") != "0":  # torchrun: only rank 0 writes .hydra/ and the job log
        from cdb.train.distributed import hydra_rank_overrides

        argv = [*argv, *hydra_rank_overrides()]
    sys.argv = [sys.argv[0], *argv]
    from cdb.train.heap import keep_heap

    keep_heap()  # freed activations stay in the process (CDB_KEEP_HEAP=0: off; cdb/train/heap.py)
    signal.signal(signal.SIGTERM, _terminated)  # like Ctrl-C: message, checkpoint kept, lock released
    register_pack_launcher()
    with quiet_broken_pipe():
        hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(task)()
