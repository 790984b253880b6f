"""cdb.models.packed: K networks fused into one compute what the K networks compute, run by run (LeNet-5 here,
ResNet-32 with either head and its option-A shortcut below; Ren et al.'s LeNet in test_lenet_ren.py)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cdb.models import build_model
from cdb.models.lenet import LeNet5
from cdb.models.packed import PackedModel, PackedZeroPadShortcut, can_pack
from cdb.models.resnet_cifar import ZeroPadShortcut


def _models(k, **kw):
    torch.manual_seed(0)
    return [LeNet5(2, **kw) for _ in range(k)]


@pytest.mark.parametrize("channels_last", [False, True])
def test_forward_and_gradients_equal_the_separate_models(channels_last):
    models = _models(4)
    packed = PackedModel(models)
    xs = [torch.randn(7, 1, 28, 28, generator=torch.Generator().manual_seed(k)) for k in range(4)]
    if channels_last:
        packed.to(memory_format=torch.channels_last)
        xs = [x.contiguous(memory_format=torch.channels_last) for x in xs]
    out = packed(xs)
    assert out.shape == (4, 7, 2)
    targets = torch.tensor([0, 1, 1, 0, 1, 0, 1])
    # each run its own loss; their sum gives every run the gradient of its own loss only
    sum(nn.functional.cross_entropy(out[k], targets) for k in range(4)).backward()
    packed_t = packed.packed_tensors()
    for k, (m, x) in enumerate(zip(models, xs)):
        ref = m(x)
        torch.testing.assert_close(out[k], ref, rtol=0, atol=1e-6)
        nn.functional.cross_entropy(ref, targets).backward()
        for name, p in m.named_parameters():
            # float summation order differs between a grouped and a plain convolution: rounding-level only
            torch.testing.assert_close(packed.run_view(name, packed_t[name].grad, k), p.grad, rtol=1e-5, atol=1e-6)


def test_runs_never_mix():
    """Changing run 1's input or weights leaves runs 0 and 2 bit for bit unchanged."""
    packed = PackedModel(_models(3))
    xs = [torch.randn(5, 1, 28, 28) for _ in range(3)]
    before = packed(xs).detach()
    xs[1] = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        packed.run_view("classifier.5.weight", packed.packed_tensors()["classifier.5.weight"], 1).add_(1.0)
    after = packed(xs).detach()
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
    assert not torch.equal(before[1], after[1])


def test_copy_to_and_from_round_trip_every_run():
    models = _models(3)
    packed = PackedModel(models)
    fresh = [LeNet5(2) for _ in range(3)]
    packed.copy_to(fresh)
    for m, f in zip(models, fresh):
        for (name, a), b in zip(m.state_dict().items(), f.state_dict().values()):
            assert torch.equal(a, b), name
    with torch.no_grad():
        fresh[2].features[0].weight.zero_()
    packed.copy_from(fresh)
    assert torch.equal(packed.packed_tensors()["features.0.weight"][12:18], torch.zeros(6, 1, 5, 5))
    assert not torch.equal(packed.packed_tensors()["features.0.weight"][6:12], torch.zeros(6, 1, 5, 5))


def test_batchnorm_is_per_run():
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
            for _ in range(2)]
    import cdb.models.packed as P
    P.PACKABLE = (*P.PACKABLE, nn.Sequential)  # a chain of leaves, like LeNet-5
    try:
        packed = PackedModel(nets)
    finally:
        P.PACKABLE = P.PACKABLE[:-1]
    xs = [torch.randn(4, 1, 6, 6), 10 + 5 * torch.randn(4, 1, 6, 6)]  # very different batch statistics
    out = packed(xs)
    for k in range(2):
        torch.testing.assert_close(out[k], nets[k](xs[k]), rtol=1e-5, atol=1e-5)
    fresh = [nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 2))
             for _ in range(2)]
    packed.copy_to(fresh)
    for k in range(2):  # running statistics too
        torch.testing.assert_close(fresh[k][1].running_mean, nets[k][1].running_mean)


def test_only_chains_of_leaves_pack():
    assert can_pack(LeNet5(2)) and can_pack(build_model("resnet32", 10, (3, 32, 32), blocks=1))
    resnet10 = [build_model("resnet10", 3, (3, 16, 16)) for _ in range(2)]
    assert not can_pack(resnet10[0])
    with pytest.raises(ValueError, match="cannot be packed"):
        PackedModel(resnet10)


# ---- ResNet-32 (CIFAR): grouped convolutions, per-run BatchNorm, option-A shortcuts, either head -----------------
def _resnets(k, head="linear", classes=10):
    """Run k's ResNet-32 as cdb.build makes it: torch.manual_seed(seed) right before build_model."""
    out = []
    for seed in range(k):
        torch.manual_seed(seed)
        out.append(build_model("resnet32", classes, (3, 32, 32), head=head))
    return out


@pytest.mark.parametrize("head,channels_last", [("linear", False), ("cosine", True)])
def test_resnet32_pack_computes_each_runs_outputs_gradients_and_statistics(head, channels_last):
    models = _resnets(3, head)
    packed = PackedModel(models)
    xs = [torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(k)) + k for k in range(3)]
    if channels_last:
        packed.to(memory_format=torch.channels_last)
        for m in models:
            m.to(memory_format=torch.channels_last)
        xs = [x.contiguous(memory_format=torch.channels_last) for x in xs]
    out = packed(xs)  # training mode: BatchNorm normalises with each run's own batch statistics
    assert out.shape == (3, 6, 10)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    sum(nn.functional.cross_entropy(out[k], y) for k in range(3)).backward()
    packed_t = packed.packed_tensors()
    for k, (m, x) in enumerate(zip(models, xs)):
        ref = m(x)
        torch.testing.assert_close(out[k], ref, rtol=0, atol=1e-5)
        nn.functional.cross_entropy(ref, y).backward()
        for name, p in m.named_parameters():  # grouped vs plain convolutions sum in another order: rounding only
            torch.testing.assert_close(packed.run_view(name, packed_t[name].grad, k), p.grad, rtol=1e-4, atol=1e-5)
        for name, b in m.named_buffers():  # running statistics of BatchNorm: each run's own
            torch.testing.assert_close(packed.run_view(name, packed_t[name], k), b, rtol=1e-5, atol=1e-6)


def test_resnet32_pack_starts_from_each_runs_own_initialisation():
    """The pack is assembled from the runs' models, each drawn from its own seed: run k's slice of every packed
    tensor is exactly what that seed gives the run alone, with either head."""
    for head in ("linear", "cosine"):
        packed = PackedModel(_resnets(3, head))
        packed_t = packed.packed_tensors()
        for k, alone in enumerate(_resnets(3, head)):
            for name, t in alone.state_dict().items():
                assert torch.equal(packed.run_view(name, packed_t[name], k), t), (head, k, name)


def test_option_a_shortcut_zero_pads_each_runs_channel_block():
    plain = ZeroPadShortcut(2, 16)  # 16 -> 32 channels: 8 zero channels before, 8 after, in each run's block
    packed = PackedZeroPadShortcut(3, plain)
    xs = [torch.randn(2, 16, 8, 8) for _ in range(3)]
    out = packed(torch.cat(xs, 1))
    assert out.shape == (2, 96, 4, 4)
    for k, x in enumerate(xs):
        block = out[:, 32 * k: 32 * (k + 1)]
        assert torch.equal(block, plain(x))
        assert not block[:, :8].any() and not block[:, 24:].any() and torch.equal(block[:, 8:24], x[:, :, ::2, ::2])
    last = packed(torch.cat(xs, 1).contiguous(memory_format=torch.channels_last))
    assert torch.equal(last, out) and last.is_contiguous(memory_format=torch.channels_last)


def test_resnet32_runs_never_mix():
    """Changing run 1's images or classifier leaves runs 0 and 2 bit for bit unchanged (in training mode too)."""
    packed = PackedModel(_resnets(3))
    xs = [torch.randn(4, 3, 32, 32) for _ in range(3)]
    before = packed(xs).detach()
    xs[1] = 3 * torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        packed.run_view("fc.weight", packed.packed_tensors()["fc.weight"], 1).add_(1.0)
    after = packed(xs).detach()
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
    assert not torch.equal(before[1], after[1])
