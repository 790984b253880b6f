"""Speed settings change how the trainer computes, not what: checked on CPU against the default path."""
from __future__ import annotations

import pytest
import torch

from cdb.data.base import DatasetSplits, TensorSplit
from cdb.losses import build_criterion
from cdb.models.lenet import LeNet5
from cdb.train.batches import _on_device
from cdb.train.loop import Pack, Trainer, TrainerConfig


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
    trainer = Trainer(LeNet5(2), data, crit, cfg, tmp_path)
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
    a, b = t.model.classifier[-1].weight, ref.model.classifier[-1].weight
    assert not torch.equal(a, b)  # bf16 rounding changes the result a little ...
    torch.testing.assert_close(a, b, rtol=0.05, atol=0.01)  # ... but not what is learned


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
