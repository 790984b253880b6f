"""An interruption's message says what was kept, run by run; a signal during a pack's final tests is an
interruption like any other; and last.pt comes at least every CHECKPOINT_MINUTES, whatever
trainer.checkpoint_every says, so an interruption loses at most a few minutes of training."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from cdb.core.errors import Interrupted, Terminated
from cdb.data.base import DatasetSplits, TensorSplit
from cdb.losses import build_criterion
from cdb.models.lenet import LeNet5
from cdb.rundir import LAST
from cdb.train import run as run_module
from cdb.train.config import TrainerConfig
from cdb.train.loop import fit, kept
from cdb.train.run import RunState


def _runs(root: Path, k: int, **cfg) -> list[RunState]:
    out = []
    for i in range(k):
        g = torch.Generator().manual_seed(i)
        split = TensorSplit(torch.randint(0, 256, (60, 1, 28, 28), dtype=torch.uint8, generator=g),
                            torch.randint(0, 2, (60,), generator=g))
        data = DatasetSplits("t", split, split, split, 2, ["a", "b"], (1, 28, 28), (0.5,), (0.25,))
        tc = TrainerConfig(**{**dict(unit="step", length=8, eval_every=4, batch_size=20, lr=0.05, device="cpu",
                                     progress=False, milestones=[]), **cfg})
        out.append(RunState(LeNet5(2), data, build_criterion({"base": "ce", "weighting": "none"}, 2,
                                                             data.class_counts), tc, root / f"run{i}", seed=i))
        out[-1].run_dir.mkdir(parents=True)
    return out


def test_a_signal_during_the_final_tests_says_what_was_kept(tmp_path, monkeypatch):
    def stopped(self, elapsed):
        raise Terminated("SIGTERM")

    monkeypatch.setattr(RunState, "finish", stopped)
    with pytest.raises(Interrupted) as exc:
        fit(_runs(tmp_path, 2))
    assert exc.value.exit_code == 143
    assert str(exc.value) == ("terminated (SIGTERM); every run kept its log and its last checkpoint (unit 8): run the "
                              "same command with resume=true to continue")


def test_last_pt_comes_every_few_minutes_whatever_checkpoint_every_says(tmp_path, monkeypatch):
    saved = []
    real_save = run_module.io.atomic_torch_save

    def save(obj, path):
        if Path(path).name == LAST.name:
            saved.append(obj["unit"])
        real_save(obj, path)

    monkeypatch.setattr(run_module.io, "atomic_torch_save", save)
    fit(_runs(tmp_path / "quick", 1, checkpoint_every=100))
    assert saved == [8, 8]  # the end only (and the final, complete one): validations came within minutes
    saved.clear()
    clock = iter(range(0, 10**6, 60 * run_module.CHECKPOINT_MINUTES))  # each reading: that many minutes later
    monkeypatch.setattr(run_module.time, "monotonic", lambda: float(next(clock)))
    fit(_runs(tmp_path / "slow", 1, checkpoint_every=100))
    assert saved == [4, 8, 8]


@pytest.mark.parametrize("runs, said", [
    ([(None, 0)], "the run had not logged a validation yet, so nothing was kept: run the same command again"),
    ([(None, 2), (None, 1)], "every run kept its logged validations but had no checkpoint yet (resume=true starts it "
                             "over from unit 0): run the same command with resume=true"),
    ([(4, 1), (None, 1), (None, 0)], "1 of the 3 runs kept its log and its last checkpoint (unit 4); 1 of the 3 runs "
                                     "kept its logged validations but had no checkpoint yet (resume=true starts it "
                                     "over from unit 0); 1 that had logged nothing was removed: run the same command"),
    ([(4, 1), (8, 2)], "every run kept its log and its last checkpoint (units 4-8)"),
])
def test_the_message_says_what_each_run_kept(runs, said):
    assert said in kept([SimpleNamespace(saved_unit=u, rows=n) for u, n in runs])
