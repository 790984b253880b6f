"""The pack loop in-process, on small synthetic data: no host sync inside a unit of steps, each run of a pack
resumes and reports alone, a pack of one is the plain trainer, a diverging run stops alone, and runs that
cannot share a pack are refused. (A pack of 8 against runs trained alone on real MNIST:
tests/slow/test_pack_equals_alone.py.)"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cdb.data.base import DatasetSplits, TensorSplit
from cdb.losses import build_criterion
from cdb.models.lenet import LeNet5
from cdb.core.errors import CdbError
from cdb.train.loop import Pack, train_alone
from cdb.train.run import RunState
from cdb.train.config import TrainerConfig
from helpers import read_log


# ---- in-process packs on small synthetic data (fast) ---------------------------------------------------------
def _data(seed: int, n: int = 120):
    g = torch.Generator().manual_seed(seed)
    split = TensorSplit(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
                        torch.randint(0, 2, (n,), generator=g))
    return DatasetSplits("t", split, split, split, 2, ["a", "b"], (1, 28, 28), (0.5,), (0.25,))


LOSSES = [{"base": "ce", "weighting": "none"}, {"base": "ce", "weighting": "cdb", "tau": "dynamic"},
          {"base": "focal", "weighting": "ifw"}]


def _trainers(root: Path, k: int, length: int = 8, **cfg) -> list[RunState]:
    out = []
    for i in range(k):
        data = _data(i)
        torch.manual_seed(i)
        crit = build_criterion(LOSSES[i % len(LOSSES)], 2, data.class_counts)
        tc = TrainerConfig(unit="step", length=length, eval_every=4, batch_size=20, lr=0.05, device="cpu",
                           progress=False, milestones=[6], **cfg)
        out.append(RunState(LeNet5(2), data, crit, tc, root / f"run{i}", seed=i))
    return out


class SyncCounter:
    """Counts the calls that make the host read a tensor's value (a device sync on a GPU)."""

    NAMES = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__", "__format__")

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        for name in self.NAMES:
            orig = getattr(torch.Tensor, name)

            def counted(t, *a, _orig=orig, _name=name, **k):
                self.calls.append(_name)
                return _orig(t, *a, **k)
            monkeypatch.setattr(torch.Tensor, name, counted)


@pytest.mark.parametrize("k", [1, 2, 3])  # 2: one batched loss for all; 3: batched + focal per run
def test_no_host_sync_inside_a_unit_of_steps(tmp_path, monkeypatch, k):
    trainers = _trainers(tmp_path, k)
    for t in trainers:  # non-uniform CDB weights, so the weighted path runs
        t.criterion.weighting.update(0, torch.tensor([0.9, 0.3]))
    pack = Pack(trainers)
    pack.fit()  # 8 steps, 2 validations; then count the syncs of 4 more steps
    counter = SyncCounter(monkeypatch)
    loss_sum, count = pack.train_units(8, 12)
    monkeypatch.undo()
    assert count == 4 and loss_sum.shape == (k,)
    assert counter.calls == []


def test_sync_counter_sees_a_sync(monkeypatch):
    counter = SyncCounter(monkeypatch)
    x = torch.tensor([1.0])
    if x > 0:
        x.item()
    monkeypatch.undo()
    assert counter.calls == ["__bool__", "item"]


def test_a_pack_resumes_each_run_and_reports_finished_runs(tmp_path):
    full = Pack(_trainers(tmp_path / "full", 3, length=12)).fit()
    cut = _trainers(tmp_path / "cut", 3, length=12)
    for t in cut:
        t.cfg.length = 8  # stop at unit 8 (a validation), as an interrupted sweep would
    Pack(cut).fit()
    resumed = Pack(_trainers(tmp_path / "cut", 3, length=12)).fit(resume=True)
    for i, (a, b) in enumerate(zip(full, resumed)):
        assert a["test"] == b["test"], i
        la, lb = read_log(tmp_path / "full" / f"run{i}"), read_log(tmp_path / "cut" / f"run{i}")
        assert [r["unit"] for r in lb] == [4, 8, 12]
        strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
        assert strip(la) == strip(lb)
    again = Pack(_trainers(tmp_path / "cut", 3, length=12)).fit(resume=True)
    assert [m["train_wall_time_s"] for m in again] == [m["train_wall_time_s"] for m in resumed]  # only reported


def test_a_pack_of_one_is_the_plain_trainer(tmp_path):
    """Trainer.fit and Pack([trainer]).fit train the same: bitwise, since a pack of one uses the plain module."""
    a = train_alone(_trainers(tmp_path / "a", 1)[0])
    b = Pack(_trainers(tmp_path / "b", 1)).fit()[0]
    assert a["checkpoints"]["last"]["test_confusion"] == b["checkpoints"]["last"]["test_confusion"]
    from cdb.rundir.io import load_checkpoint
    sa, sb = (load_checkpoint(tmp_path / d / "run0" / "checkpoints" / "last.pt")["model"] for d in "ab")
    assert all(torch.equal(sa[n], sb[n]) for n in sa)


def test_a_diverging_run_stops_alone(tmp_path):
    trainers = _trainers(tmp_path, 3)
    trainers[1].cfg = TrainerConfig(**{**trainers[1].cfg.__dict__})  # same values, own object
    with torch.no_grad():
        trainers[1].model.classifier[-1].weight.fill_(float("nan"))
    out = Pack(trainers).fit()
    assert "non-finite" in str(out[1]) and out[0]["status"] == out[2]["status"] == "complete"
    record = json.loads((trainers[1].run_dir / "metrics.json").read_text())   # recorded for cdb-table to count
    assert record["status"] == "diverged" and record["message"] == str(out[1])
    again = _trainers(tmp_path, 3)                                  # resume: reported, not trained again
    with pytest.raises(CdbError, match="diverged earlier"):
        again[1].begin(resume=True)
    assert json.loads((trainers[1].run_dir / "metrics.json").read_text()) == record


def test_runs_that_cannot_share_a_pack_are_refused(tmp_path):
    from cdb.core.errors import ConfigError

    a, b = _trainers(tmp_path, 2)
    b.cfg = TrainerConfig(**{**b.cfg.__dict__, "batch_size": 10})
    with pytest.raises(ConfigError, match="same trainer settings"):
        Pack([a, b])


def test_a_pack_whose_runs_all_diverge_reports_each(tmp_path):
    trainers = _trainers(tmp_path, 2)
    for t in trainers:
        with torch.no_grad():
            t.model.classifier[-1].weight.fill_(float("nan"))
    out = Pack(trainers).fit()
    assert all("non-finite" in str(o) and "between steps 0 and 4" in str(o) for o in out)
