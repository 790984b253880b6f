"""Where the trainer meets the weighting, the log and the checkpoints, checked on real short MNIST 4/9 runs
against values recomputed by hand from log.jsonl (not from the code under test).

Settings: majority ratio 0.6 and lr 0.05 make LeNet-5 leave the one-class start within ~20 steps, so the
class-wise validation accuracies are not just 0 / 100; two validations of plain-CE warm-up (loss.warmup=2)
keep the literal rule from zeroing a class at the first update; the third validation (the last) then sees
accuracies strictly between 0 and 100% for both classes.
"""
from __future__ import annotations

import json
import math

import pytest

from cdb.build import train_from_config
from helpers import compose, read_log

RUN = ["loss=cdb", "dataset.majority_ratio=0.6", "trainer.unit=step", "trainer.length=24", "trainer.eval_every=8",
       "trainer.lr=0.05", "trainer.milestones=[]", "trainer.progress=false", "threads=1", "loss.warmup=2"]


def paper_tau(acc: list[float]) -> float:
    """Paper eq. 3-4: tau = 2 / (1 + e^-b), b = max A / (min A + eps) - 1, eps = 1e-4 (A as fractions)."""
    b = max(acc) / (min(acc) + 1e-4) - 1.0
    return 2.0 / (1.0 + math.exp(-b))


def paper_weights(acc: list[float], tau: float, normalize: str) -> list[float]:
    """Paper eq. 2, w_c = (1 - A_c)^tau, optionally rescaled to mean 1 (the authors' code)."""
    w = [(1.0 - a) ** tau for a in acc]
    if normalize == "mean" and sum(w) > 0:
        w = [x * len(w) / sum(w) for x in w]
    return w


@pytest.mark.parametrize("tau", ["1.5", "dynamic"])
@pytest.mark.parametrize("normalize", ["none", "mean"])
def test_logged_weights_are_eq2_of_the_logged_validation_accuracy(mnist_dir, tmp_path, tau, normalize):
    metrics = train_from_config(compose([*RUN, f"loss.tau={tau}", f"loss.normalize={normalize}",
                                         f"data_root={mnist_dir}"]), tmp_path)
    rows = read_log(tmp_path)
    assert [r["unit"] for r in rows] == [8, 16, 24]
    # the accuracies the weighting saw are validation accuracies: the last row's equal those of the final
    # model evaluated on the validation split at the end (metrics.json), and differ from its test accuracies
    last = metrics["checkpoints"]["last"]
    assert rows[-1]["val_class_accuracy"] == pytest.approx(last["val"]["per_class_accuracy"])
    assert rows[-1]["val_class_accuracy"] != pytest.approx(last["test"]["per_class_accuracy"])
    informative = 0
    for k, row in enumerate(rows, start=1):
        acc = [a / 100.0 for a in row["val_class_accuracy"]]   # logged in %, eq. 2 takes fractions
        expected_tau = 1.5 if tau == "1.5" else paper_tau(acc)
        assert row["tau"] == pytest.approx(expected_tau, rel=1e-9), k
        if k <= 2:       # warm-up validations: plain CE
            assert row["weights"] == [1.0, 1.0], k
            continue
        assert row["weights"] == pytest.approx(paper_weights(acc, expected_tau, normalize), rel=1e-5, abs=1e-7), k
        informative += 0 < min(acc) and max(acc) < 1
    assert informative >= 1      # at least one update from accuracies strictly between 0 and 100%


def test_select_best_reports_the_best_validation_checkpoint(mnist_dir, tmp_path):
    """select=best with checkpoint_every=2: the reported model is the one of the validation with the highest
    balanced accuracy in log.jsonl (the first of equals), not the last one nor one on the checkpoint grid."""
    metrics = train_from_config(compose(["loss=ce", *RUN[1:-1], "trainer.select=best", "trainer.checkpoint_every=2",
                                         "trainer.length=48", f"data_root={mnist_dir}"]), tmp_path)
    rows = read_log(tmp_path)
    accs = [r["val_balanced_accuracy"] for r in rows]
    best_unit = rows[accs.index(max(accs))]["unit"]
    assert best_unit != rows[-1]["unit"]      # this seed peaks before the end, so best and last differ
    best = metrics["checkpoints"]["best"]
    assert metrics["selected"] == "best" and best["unit"] == best_unit
    # the best checkpoint holds that model: evaluated again on validation it gives the logged accuracy
    assert best["val"]["macro_recall"] == pytest.approx(max(accs))
    assert metrics["test"] == best["test"] != metrics["checkpoints"]["last"]["test"]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test"] == best["test"]


def test_non_finite_outputs_are_an_error_not_predictions_of_class_0():
    """argmax counts a NaN row as class 0 (and top-k picks other classes): a diverged model once reported
    "50% accuracy" on EGTEA. Evaluation must stop with a one-line error instead."""
    import torch

    from cdb.data.base import DatasetSplits, TensorSplit
    from cdb.core.errors import CdbError
    from cdb.train.evaluate import evaluate

    split = TensorSplit(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]))
    data = DatasetSplits("toy", split, split, split, 2, ["a", "b"], (1, 2, 2))

    class Constant(torch.nn.Module):
        def __init__(self, value):
            super().__init__()
            self.value = value

        def forward(self, x):
            return torch.full((x.shape[0], 2), self.value)

    assert evaluate(Constant(0.5), split, data, "cpu").confusion.sum() == 4
    with pytest.raises(CdbError, match="non-finite"):
        evaluate(Constant(float("nan")), split, data, "cpu")
