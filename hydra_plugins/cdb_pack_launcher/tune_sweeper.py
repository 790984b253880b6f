"""Hydra's entry point for hydra/sweeper=tune: hydra-optuna-sweeper's OptunaSweeper, except that a study none of whose
trials finished, or a grid whose last trial failed, ends with one line (then the sweep summary) instead of Optuna's
error. What each trial returns is cdb.launch.objective's business; the search itself is Optuna's.

hydra-optuna-sweeper (cdb-loss[tune]) is imported when TuneSweeper is first asked for, not when the module is: Hydra's
plugin scan imports every module under hydra_plugins on each cdb-run, and an import that fails there prints a
6-line UserWarning to a user who never asked for tuning.
"""
import sys
from typing import Any, List


def _tune_sweeper() -> type:
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper  # cdb-loss[tune]

    class TuneSweeper(OptunaSweeper):
        """OptunaSweeper, registered by cdb.cli.run when hydra-optuna-sweeper is installed (cdb-loss[tune])."""

        def sweep(self, arguments: List[str]) -> None:
            try:
                return super().sweep(arguments)
            except ValueError as exc:
                if "No trials are completed" not in str(exc):
                    raise
                print("cdb-run: error: no trial of the study finished (see the failed runs above): there is no best "
                      "trial, and no optimization_results.yaml", file=sys.stderr)
            except RuntimeError as exc:  # hydra-optuna-sweeper tells a grid study's failed last trial outside Study.stop
                if "Study.stop" not in str(exc):
                    raise
                print("cdb-run: error: the last trial of the grid failed, which hydra-optuna-sweeper cannot record: "
                      "the study stops without optimization_results.yaml; compare --best-of still reads its runs",
                      file=sys.stderr)

    TuneSweeper.__module__, TuneSweeper.__qualname__ = __name__, "TuneSweeper"
    return TuneSweeper


def __getattr__(name: str) -> Any:
    if name != "TuneSweeper":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = globals()["TuneSweeper"] = _tune_sweeper()
    return cls
