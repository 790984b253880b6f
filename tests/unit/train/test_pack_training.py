"""The pack loop in-process, on small synthetic data: no host sync inside a unit of steps (LeNet-5, Ren et al.'s
LeNet, ResNet-32), a pack validates its runs with one packed forward and the counts of each run alone, each run of
a pack resumes and reports alone, a run alone trains its own module, a diverging run stops alone, and runs that
cannot share a pack are refused. (A pack of 8 against runs trained alone on real MNIST:
tests/slow/test_pack_equals_alone.py; ResNet-32 packs on a small CIFAR-100-LT: test_resnet_pack.py.)"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cdb.data.base import DatasetSplits, TensorSplit
from cdb.losses import build_criterion
from cdb.models.lenet import LeNet5
from cdb.models.lenet_ren import LeNetRen
from cdb.models.resnet_cifar import resnet32
from cdb.core.errors import CdbError
from cdb.train.loop import assemble, fit, train_alone, train_units
from cdb.train.pack import Pack
from cdb.train.run import RunState
from cdb.train.config import TrainerConfig
from helpers import read_log


# ---- in-process packs on small synthetic data (fast) ---------------------------------------------------------
# model name -> (image shape, the model for 2 classes); ResNet-32 on 8x8 images (the same code as 32x32, cheaper)
MODELS = {"lenet5": ((1, 28, 28), lambda: LeNet5(2)), "lenet_ren": ((1, 28, 28), lambda: LeNetRen(2)),
          "resnet32": ((3, 8, 8), lambda: resnet32(2, 3))}


def _data(seed: int, n: int = 120, shape=(1, 28, 28)):
    g = torch.Generator().manual_seed(seed)
    split = TensorSplit(torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g),
                        torch.randint(0, 2, (n,), generator=g))
    c = shape[0]
    return DatasetSplits("t", split, split, split, 2, ["a", "b"], shape, (0.5,) * c, (0.25,) * c)


LOSSES = [{"base": "ce", "weighting": "none"}, {"base": "ce", "weighting": "cdb", "tau": "dynamic"},
          {"base": "focal", "weighting": "ifw"}]


def _runs(root: Path, k: int, length: int = 8, model: str = "lenet5", datas=None, n: int = 120,
              **cfg) -> list[RunState]:
    shape, make = MODELS[model]
    out = []
    for i in range(k):
        data = datas[i] if datas else _data(i, n, shape)
        torch.manual_seed(i)
        crit = build_criterion(LOSSES[i % len(LOSSES)], 2, data.class_counts)
        tc = TrainerConfig(**{**dict(unit="step", length=length, eval_every=4, batch_size=20, lr=0.05,
                                     device="cpu", progress=False, milestones=[6]), **cfg})
        out.append(RunState(make(), data, crit, tc, root / f"run{i}", seed=i))
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


# 2: one batched loss for all; 3: batched + focal per run; Ren et al.'s LeNet and ResNet-32 packed too
@pytest.mark.parametrize("model,k", [("lenet5", 1), ("lenet5", 2), ("lenet5", 3), ("lenet_ren", 3),
                                     ("resnet32", 3)])
def test_no_host_sync_inside_a_unit_of_steps(tmp_path, monkeypatch, model, k):
    length = 8 if model == "lenet5" else 4
    runs = _runs(tmp_path, k, length=length, model=model, n=60)
    for r in runs:  # non-uniform CDB weights, so the weighted path runs
        r.criterion.weighting.update(0, torch.tensor([0.9, 0.3]))
    fit(runs)  # 8 (4) steps, 2 (1) validations; then count the syncs of 4 more steps
    group = assemble(runs)
    counter = SyncCounter(monkeypatch)
    loss_sum, count = train_units(group, length, length + 4)
    monkeypatch.undo()
    assert count == 4 and loss_sum.shape == (k,)
    assert counter.calls == []


@pytest.mark.parametrize("model", ["lenet5", "resnet32"])
def test_a_pack_validates_its_runs_in_one_packed_forward_with_each_runs_own_counts(tmp_path, monkeypatch, model):
    """Three runs, two of them sharing one data set (one validation split): the pack's validation is one packed
    forward per batch, reads the shared split once, never calls a run's own module, and gives each run the
    confusion and top-k counts its own module gives it on the same weights."""
    import cdb.train.evaluate as ev

    shape = MODELS[model][0]
    shared = _data(0, 60, shape)
    runs = _runs(tmp_path, 3, model=model, datas=[shared, _data(1, 60, shape), shared], eval_batch_size=25)
    pack = Pack(runs)
    train_units(pack, 0, 4)
    pack.hand_back(0.05)
    streams, own_calls = [], []
    orig = ev.eval_batches
    monkeypatch.setattr(ev, "eval_batches", lambda split, *a, **k: streams.append(split) or orig(split, *a, **k))
    for r in runs:
        r.model.register_forward_hook(lambda *a: own_calls.append(1))
    vals = pack.validate()
    assert len(streams) == 2 and own_calls == []   # 3 runs, 2 splits; the packed net only
    monkeypatch.undo()
    for r, v in zip(runs, vals):
        alone = r.validate(r.data.val)
        assert torch.equal(v.confusion, alone.confusion) and v.topk_correct == alone.topk_correct
        assert v.confusion.sum() == 60


def test_a_pack_validates_splits_of_different_lengths(tmp_path):
    """Padding the shorter split's batches with zero images changes no run's counts (eval mode: per image)."""
    datas = [_data(i, 60) for i in range(3)]
    datas[1] = DatasetSplits("t", datas[1].train, TensorSplit(datas[1].val.x[:37], datas[1].val.y[:37]),
                             datas[1].test, 2, ["a", "b"], (1, 28, 28), (0.5,), (0.25,))
    runs = _runs(tmp_path, 3, datas=datas, eval_batch_size=25)
    pack = Pack(runs)
    train_units(pack, 0, 4)
    pack.hand_back(0.05)
    for r, v in zip(runs, pack.validate()):
        alone = r.validate(r.data.val)
        assert torch.equal(v.confusion, alone.confusion) and v.topk_correct == alone.topk_correct
    assert [int(v.confusion.sum()) for v in pack.validate()] == [60, 37, 60]


def test_batched_validation_logs_what_validation_run_by_run_logged(tmp_path, monkeypatch):
    """A pack's one packed validation writes the log rows (validation counts, CDB weights) and test results that
    validating each run's own module writes."""
    calls = []
    orig = RunState.validate
    monkeypatch.setattr(RunState, "validate", lambda self, split: calls.append(1) or orig(self, split))
    batched = fit(_runs(tmp_path / "batched", 3))
    assert len(calls) == 3 * 4  # only the final tests (last and best: validation and test split) run per run
    monkeypatch.setattr(Pack, "validate", lambda self: [r.validate(r.data.val) for r in self.runs])
    one_by_one = fit(_runs(tmp_path / "one_by_one", 3))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    for i, (a, b) in enumerate(zip(batched, one_by_one)):
        assert strip(read_log(tmp_path / "batched" / f"run{i}")) == strip(read_log(tmp_path / "one_by_one" / f"run{i}"))
        assert a["checkpoints"] == b["checkpoints"]


def test_sync_counter_sees_a_sync(monkeypatch):
    counter = SyncCounter(monkeypatch)
    x = torch.tensor([1.0])
    if x > 0:
        x.item()
    monkeypatch.undo()
    assert counter.calls == ["__bool__", "item"]


def test_a_pack_resumes_each_run_and_reports_finished_runs(tmp_path):
    full = fit(_runs(tmp_path / "full", 3, length=12))
    cut = _runs(tmp_path / "cut", 3, length=12)
    for t in cut:
        t.cfg.length = 8  # stop at unit 8 (a validation), as an interrupted sweep would
    fit(cut)
    resumed = fit(_runs(tmp_path / "cut", 3, length=12), resume=True)
    for i, (a, b) in enumerate(zip(full, resumed)):
        assert a["test"] == b["test"], i
        la, lb = read_log(tmp_path / "full" / f"run{i}"), read_log(tmp_path / "cut" / f"run{i}")
        assert [r["unit"] for r in lb] == [4, 8, 12]
        strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
        assert strip(la) == strip(lb)
    again = fit(_runs(tmp_path / "cut", 3, length=12), resume=True)
    assert [m["train_wall_time_s"] for m in again] == [m["train_wall_time_s"] for m in resumed]  # only reported


def test_a_run_alone_trains_its_own_module_with_its_own_loss(tmp_path):
    """A run trained alone is what a plain loop trains: its own module, optimizer and loss, no packed copy; fit of
    one run is train_alone, bitwise."""
    import torch.nn.functional as F

    run = _runs(tmp_path / "c", 1)[0]
    group = assemble([run])
    assert group.net is run.net and group.optimizer is run.optimizer
    x, y, _ = next(iter(run.batches(0)))
    logits = run.net(x)
    plain = F.cross_entropy(logits, y)  # LOSSES[0]: plain CE, unweighted, mean over the batch
    assert torch.equal(group.loss(logits, y, None, x=x, step=0, lr=0.05), plain.reshape(1))
    a = train_alone(_runs(tmp_path / "a", 1)[0])
    b = fit(_runs(tmp_path / "b", 1))[0]
    assert a["checkpoints"]["last"]["test_confusion"] == b["checkpoints"]["last"]["test_confusion"]
    from cdb.rundir.io import load_checkpoint
    sa, sb = (load_checkpoint(tmp_path / d / "run0" / "checkpoints" / "last.pt")["model"] for d in "ab")
    assert all(torch.equal(sa[n], sb[n]) for n in sa)


def test_a_diverging_run_stops_alone(tmp_path):
    runs = _runs(tmp_path, 3)
    runs[1].cfg = TrainerConfig(**{**runs[1].cfg.__dict__})  # same values, own object
    with torch.no_grad():
        runs[1].model.classifier[-1].weight.fill_(float("nan"))
    out = fit(runs)
    assert "non-finite" in str(out[1]) and out[0]["status"] == out[2]["status"] == "complete"
    record = json.loads((runs[1].run_dir / "metrics.json").read_text())   # recorded for cdb-table to count
    assert record["status"] == "diverged" and record["message"] == str(out[1])
    again = _runs(tmp_path, 3)                                  # resume: reported, not trained again
    with pytest.raises(CdbError, match="diverged earlier"):
        again[1].begin(resume=True)
    assert json.loads((runs[1].run_dir / "metrics.json").read_text()) == record


def test_runs_that_cannot_share_a_pack_are_refused(tmp_path):
    from cdb.core.errors import ConfigError

    a, b = _runs(tmp_path, 2)
    b.cfg = TrainerConfig(**{**b.cfg.__dict__, "batch_size": 10})
    with pytest.raises(ConfigError, match="same trainer settings"):
        Pack([a, b])


def test_runs_of_different_training_set_sizes_pack_with_step_units_only(tmp_path):
    from cdb.core.errors import ConfigError

    datas = [_data(0, 120), _data(1, 80)]   # e.g. two imbalance ratios of a long-tailed set
    out = fit(_runs(tmp_path / "step", 2, length=4, datas=datas))  # unit=step: batch_size every step
    assert all(m["status"] == "complete" for m in out)
    with pytest.raises(ConfigError, match="training splits of one size"):
        Pack(_runs(tmp_path / "epoch", 2, datas=datas, unit="epoch", length=1, eval_every=1, milestones=[]))
    small = _data(1, 60, (3, 8, 8))
    with pytest.raises(ConfigError, match="inputs of one shape"):  # ResNet-32's weights fit any image size
        Pack(_runs(tmp_path / "shape", 2, model="resnet32", datas=[_data(0, 60, (3, 16, 16)), small]))


def test_a_pack_whose_runs_all_diverge_reports_each(tmp_path):
    runs = _runs(tmp_path, 2)
    for t in runs:
        with torch.no_grad():
            t.model.classifier[-1].weight.fill_(float("nan"))
    out = fit(runs)
    assert all("non-finite" in str(o) and "between steps 0 and 4" in str(o) for o in out)
