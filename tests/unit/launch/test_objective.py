"""What a tuned study's job returns (cdb.launch.objective): the balanced validation accuracy of the reported
checkpoint, computed here by hand from the class-wise validation accuracies, never a test value; a failed job is a
value Optuna cannot take as a number but the sweep summary reads its line from."""
from __future__ import annotations

import math
import pickle

import pytest
from omegaconf import OmegaConf

from cdb.core.metrics import validation_objective
from cdb.launch.callbacks import FAILED_KEY
from cdb.launch.objective import FailedTrial, failure_value, job_value, tuning

TUNE = OmegaConf.create({"sweeper": {"_target_": "hydra_plugins.cdb_pack_launcher.tune_sweeper.TuneSweeper"}})
BASIC = OmegaConf.create({"sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"}})


def _metrics(selected: str, test_error: float = 10.0) -> dict:
    def checkpoint(val):
        return {"val": {"macro_recall": sum(val) / len(val), "per_class_accuracy": val},
                "test": {"error": test_error, "per_class_accuracy": [0.0, 100.0]}}
    return {"status": "complete", "selected": selected, "test": {"error": test_error},
            "checkpoints": {"last": checkpoint([60.0, 90.0]), "best": checkpoint([88.0, 92.0])}}


@pytest.mark.parametrize("selected, by_hand", [("best", (88 + 92) / 2), ("last", (60 + 90) / 2)])
def test_the_objective_is_the_reported_checkpoints_balanced_validation_accuracy(selected, by_hand):
    assert validation_objective(_metrics(selected)) == by_hand
    assert validation_objective(_metrics(selected, test_error=99.0)) == by_hand  # the test split plays no part
    assert job_value(TUNE, _metrics(selected), "run") == by_hand
    assert job_value(BASIC, _metrics(selected), "run") == _metrics(selected)  # any other sweep: the metrics


def test_a_diverged_run_has_no_objective():
    assert math.isnan(validation_objective({"status": "diverged", "message": "non-finite"}))


def test_a_failed_trial_is_not_a_number_but_keeps_its_line():
    value = failure_value(TUNE, "training loss became non-finite", {FAILED_KEY: "x"})
    assert isinstance(value, FailedTrial)
    with pytest.raises(ValueError, match="the run failed: training loss became non-finite"):
        float(value)  # what hydra-optuna-sweeper does with a return value: a failed trial
    again = pickle.loads(pickle.dumps(value))  # across joblib's processes
    assert getattr(again, FAILED_KEY) == "training loss became non-finite"
    assert failure_value(BASIC, "line", {FAILED_KEY: "line"}) == {FAILED_KEY: "line"}


def test_tuning_means_optunas_sweeper_or_cdbs_subclass_of_it():
    assert tuning(TUNE) and not tuning(BASIC) and not tuning(None)
    assert tuning(OmegaConf.create({"sweeper": {"_target_":
                                                "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"}}))
