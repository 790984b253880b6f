"""Hydra's entry point for hydra/sweeper=tune: hydra-optuna-sweeper's OptunaSweeper, except that a study none of whose
trials finished, or a grid whose last trial failed, ends with one line (then the sweep summary) instead of Optuna's
error. What each trial returns is cdb.launch.objective's business; the search itself is Optuna's.
"""
import sys
from typing import List

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class TuneSweeper(OptunaSweeper):
    """OptunaSweeper, registered by cdb.cli.run when hydra-optuna-sweeper is installed (cdb[tune])."""

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
            print("cdb-run: error: the last trial of the grid failed, which hydra-optuna-sweeper cannot record: the "
                  "study stops without optimization_results.yaml; compare --best-of still reads its runs",
                  file=sys.stderr)
