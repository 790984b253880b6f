"""Speed settings change how the trainer computes, not what: checked on CPU against the default path."""
from __future__ import annotations

import pytest
import torch

from cdb.data.base import DatasetSplits, TensorSplit
from cdb.losses import build_criterion
from cdb.models.lenet import LeNet5
from cdb.train.batches import _on_device
from cdb.train.loop import Pack
from cdb.train.run import RunState
from cdb.train.config import TrainerConfig


def _data():
    g = torch.Generator().manual_seed(0)
    split = TensorSplit(torch.randint(0, 256, (60, 1, 28, 28), dtype=torch.uint8, generator=g), torch.arange(60) % 2)
    return DatasetSplits("t", split, split, split, 2, ["a", "b"], (1, 28, 28), (0.5,), (0.25,))


def _train(tmp_path, **speed):
    data = _data()
    torch.manual_seed(0)
    crit = build_criterion({"base": "ce", "weighting": "none"}, 2, data.class_counts)
    cfg = TrainerConfig(unit="step", length=4, eval_every=4, batch_size=20, lr=0.05, device="cpu", progress=False,
                        **speed)
    trainer = RunState(LeNet5(2), data, crit, cfg, tmp_path)
    pack = Pack([trainer])
    pack.fit()
    return trainer


def test_channels_last_trains_the_same_weights(tmp_path):
    ref = _train(tmp_path / "a")
    cl = _train(tmp_path / "b", channels_last=True)
    w = cl.model.features[3].weight  # (16, 6, 5, 5): the layouts differ (with one input channel they coincide)
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    for (k, a), b in zip(cl.model.state_dict().items(), ref.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)


def test_amp_runs_the_model_in_bfloat16_and_keeps_the_loss_float32(tmp_path):
    t = _train(tmp_path, amp=True)
    x = torch.randn(3, 1, 28, 28)
    with t.autocast():
        logits = t.net(x)
    assert logits.dtype == torch.bfloat16
    assert t.criterion(logits, torch.tensor([0, 1, 0])).dtype == torch.float32
    ref = _train(tmp_path / "ref")
    torch.manual_seed(0)
    start = LeNet5(2).state_dict()  # the weights both runs started from (same seed)
    a, b = t.model.state_dict(), ref.model.state_dict()
    for k in a:
        moved = (b[k] - start[k]).norm()  # how far 4 float32 SGD steps moved this tensor
        assert moved > 0, k
        # bf16 rounding changes the result (not bitwise) by a fraction of what training moved it: 0.4-16 %
        # per tensor on this machine; a wrong amp path (another loss, unscaled or stale gradients) moves it by more
        assert (a[k] - b[k]).norm() < 0.3 * moved, k
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_in_memory_splits_move_to_the_device_once():
    split = _data().train
    assert _on_device(split, "cpu") is split
    on = _on_device(split, "meta")
    assert on.x.device.type == "meta" and _on_device(split, "meta") is on  # cached on the split
    assert _on_device(split, "meta", keep=False) is split  # data_on_device=false: batches move instead


@pytest.mark.slow
def test_compiled_model_trains_the_same_weights(tmp_path):
    ref = _train(tmp_path / "a")
    comp = _train(tmp_path / "b", compile=True)
    for (k, a), b in zip(comp.model.state_dict().items(), ref.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)
