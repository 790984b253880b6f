"""A training step of a pack reads nothing back from the device and makes no blocking copy between host and device;
a validation reads its counts back once, at its end, however many batches it has.

On a CPU a stand-in counts the calls that would wait for a GPU: .cpu(), .item() and the other value reads, .cuda()
and every .to() that moves a tensor without non_blocking=True (what the host waits for when a GPU exists). Where a
GPU exists, torch.cuda.set_sync_debug_mode("error") turns every synchronising call of a step into an error."""
from __future__ import annotations

import pytest
import torch

from cdb.data.augment import crop_flip, crop_flip_runs, normalize, to_device
from cdb.train.loop import assemble, fit, train_units
from cdb.train.pack import Pack
from test_pack_training import SyncCounter, _data, _runs


class CopyCounter(SyncCounter):
    """SyncCounter, and the calls that copy between host and device in a way the host waits for."""

    def __init__(self, monkeypatch):
        super().__init__(monkeypatch)
        for name in ("cpu", "cuda"):
            orig = getattr(torch.Tensor, name)

            def counted(t, *a, _orig=orig, _name=name, **k):
                self.calls.append(_name)
                return _orig(t, *a, **k)
            monkeypatch.setattr(torch.Tensor, name, counted)
        orig_to = torch.Tensor.to

        def to(t, *a, **k):
            moves = any(isinstance(v, (str, torch.device, torch.Tensor)) for v in (*a, *k.values())) \
                or "device" in k
            if moves and not k.get("non_blocking", False):
                self.calls.append("to")
            return orig_to(t, *a, **k)
        monkeypatch.setattr(torch.Tensor, "to", to)


def test_the_copy_counter_sees_blocking_copies_and_value_reads(monkeypatch):
    x = torch.ones(3)
    counter = CopyCounter(monkeypatch)
    x.cpu(), x.to("cpu"), x.to(x), x.to("cpu", non_blocking=True), x.to(torch.float64), x.sum().item()
    monkeypatch.undo()
    assert counter.calls == ["cpu", "to", "to", "item"]


@pytest.mark.parametrize("model,k", [("lenet5", 1), ("lenet5", 3), ("lenet_ren", 2), ("resnet32", 2)])
def test_a_step_makes_no_blocking_copy_and_reads_nothing_back(tmp_path, monkeypatch, model, k):
    runs = _runs(tmp_path, k, length=4, model=model, n=60)
    for r in runs:
        r.criterion.weighting.update(0, torch.tensor([0.9, 0.3]))
    fit(runs)
    group = assemble(runs)
    counter = CopyCounter(monkeypatch)
    loss_sum, count = train_units(group, 4, 7)
    monkeypatch.undo()
    assert count == 3 and counter.calls == []


@pytest.mark.parametrize("k", [1, 3])
def test_a_validation_reads_its_counts_back_once_whatever_its_number_of_batches(tmp_path, monkeypatch, k):
    reads = []
    for batch in (60, 7):  # 1 batch, then 9 batches (60 images)
        group = assemble(_runs(tmp_path / str(batch), k, length=4, n=60, eval_batch_size=batch))
        counter = CopyCounter(monkeypatch)
        group.validate()
        monkeypatch.undo()
        reads.append(counter.calls)
    assert reads[0] == reads[1] and len(reads[0]) <= 3


def test_k_runs_batches_stacked_get_each_runs_own_crops_and_statistics():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (3, 5, 3, 8, 8), dtype=torch.uint8, generator=g)
    together = crop_flip_runs(x, [torch.Generator().manual_seed(s) for s in range(3)], pad=2)
    alone = torch.stack([crop_flip(x[s], torch.Generator().manual_seed(s), pad=2) for s in range(3)])
    assert torch.equal(together, alone)
    mean, std = [(0.1, 0.2, 0.3), (0.4, 0.5, 0.6), (0.5, 0.5, 0.5)], [(0.2,) * 3, (0.3,) * 3, (0.25,) * 3]
    stacked = normalize(x, torch.tensor(mean).view(3, 1, 3, 1, 1), torch.tensor(std).view(3, 1, 3, 1, 1))
    assert torch.equal(stacked, torch.stack([normalize(x[s], mean[s], std[s]) for s in range(3)]))


def test_a_packs_steps_feed_each_run_the_batches_it_trains_on_alone(tmp_path):
    datas = [_data(0, 60), _data(1, 80), _data(2, 60)]  # three training sets, two sizes (step units)
    runs = _runs(tmp_path, 3, length=4, n=60, datas=datas)
    pack = Pack(runs)
    assert pack.feed is not None
    for u in (0, 3, 5):
        together = list(pack.steps(u))
        alone = [list(r.batches(u)) for r in runs]
        assert len(together) == len(alone[0]) == 1
        for kth, (x, y, b) in enumerate(zip(*together[0])):
            ax, ay, ab = alone[kth][0]
            assert torch.equal(x, ax) and torch.equal(y, ay) and torch.equal(b, ab)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_a_packs_step_and_validation_never_synchronise(tmp_path):
    runs = _runs(tmp_path, 3, length=4, n=60, device="cuda")
    for r in runs:
        r.criterion.weighting.update(0, torch.tensor([0.9, 0.3]))
    fit(runs)
    pack = Pack(runs)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        train_units(pack, 4, 7)
        x = to_device(torch.ones(4), "cuda")
        normalize(x.view(1, 1, 2, 2).to(torch.uint8), (0.5,), (0.25,))
    finally:
        torch.cuda.set_sync_debug_mode(0)
