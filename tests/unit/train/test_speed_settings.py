"""Speed settings change how the trainer computes, not what: checked on CPU against the default path (a tiny run,
helpers.training; torch.compile: tests/slow/test_compiled_model.py)."""
from __future__ import annotations

import torch

from cdb.models.lenet import LeNet5
from cdb.train.batches import _on_device
from helpers.training import tiny_splits as _data, train_tiny as _train


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
