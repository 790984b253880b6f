"""Ren et al.'s MNIST network (model=lenet_ren): parameter count, TensorFlow SAME pooling, initialisation, packing
and its size check, pinned against values worked out by hand from their code (docs/protocol.md)."""
from __future__ import annotations

import math

import pytest
import torch

from helpers import compose
from cdb.core.errors import CdbError
from cdb.models import build_model
from cdb.models.lenet_ren import same_pool_padding
from cdb.models.packed import PackedModel, can_pack


def test_parameter_count_by_hand():
    # conv 1->16: 16*1*25 + 16; conv 16->32: 32*16*25 + 32; conv 32->64: 64*32*25 + 64; fc 1024->100; fc 100->2
    m = build_model("lenet_ren", 2, (1, 28, 28))
    per_layer = [p.numel() for p in m.parameters()]
    assert [per_layer[i] + per_layer[i + 1] for i in range(0, 10, 2)] == [416, 12832, 51264, 102500, 202]
    assert sum(per_layer) == 167_214


def test_feature_map_sizes_follow_tensorflow_same_pooling():
    # SAME: out = ceil(n / 2); 28 -> 14 (pad 0 before, 1 after), 14 -> 7 (0, 1), 7 -> 4 (1, 1)
    assert [same_pool_padding(n) for n in (28, 14, 7)] == [(0, 1), (0, 1), (1, 1)]
    m = build_model("lenet_ren", 2, (1, 28, 28))
    x, sides = torch.rand(2, 1, 28, 28), []
    for layer in m.features:
        x = layer(x)
        if isinstance(layer, torch.nn.ReLU):
            sides.append(tuple(x.shape[1:]))
    assert sides == [(16, 14, 14), (32, 7, 7), (64, 4, 4)]
    assert m(torch.rand(2, 1, 28, 28)).shape == (2, 2)


def test_padding_never_wins_the_max():
    # an all-negative map: TensorFlow's SAME max-pool ignores padding, so the maximum is a real pixel
    pool = build_model("lenet_ren", 2, (1, 28, 28)).features[1:3]
    x = -torch.rand(1, 1, 28, 28) - 1.0
    y = pool(x)
    assert y.max() < -1.0 + 1e-6 and torch.isfinite(y).all()
    # the last window of an even side covers pixels 26, 27 (and the padding): its max is theirs
    assert y[0, 0, -1, -1] == x[0, 0, 26:, 26:].max()


def test_initialisation_is_truncated_normal_of_std_point_one():
    torch.manual_seed(0)
    m = build_model("lenet_ren", 2, (1, 28, 28))
    w = torch.cat([p.flatten() for n, p in m.named_parameters() if n.endswith("weight")])
    # a normal of std 0.1 cut at +-2 std has std 0.1 * sqrt(1 - 2 * 2 phi(2) / (2 Phi(2) - 1)) = 0.08796
    phi = math.exp(-2.0) / math.sqrt(2 * math.pi)
    big_phi = 0.5 * (1 + math.erf(2 / math.sqrt(2)))
    expected = 0.1 * math.sqrt(1 - 4 * phi / (2 * big_phi - 1))
    assert abs(expected - 0.08796) < 1e-4
    assert abs(w.std().item() - expected) < 0.002 and w.abs().max() <= 0.2
    assert all((p == 0).all() for n, p in m.named_parameters() if n.endswith("bias"))


def test_ren_network_packs_and_gives_each_run_its_own_output():
    models = [build_model("lenet_ren", 2, (1, 28, 28)) for _ in range(3)]
    assert can_pack(models[0])
    xs = [torch.rand(5, 1, 28, 28) for _ in models]
    out = PackedModel(models)(xs)
    for k, m in enumerate(models):
        torch.testing.assert_close(out[k], m(xs[k]), rtol=1e-5, atol=1e-6)


def test_model_config_and_size_check():
    assert compose(["model=lenet_ren"]).model.name == "lenet_ren"
    with pytest.raises(CdbError, match="model=lenet_ren takes images of 8 to 64 pixels"):
        build_model("lenet_ren", 2, (1, 100, 100))


@pytest.mark.parametrize("channels_last", [False, True])
def test_each_pool_is_an_explicit_minus_infinity_padding_then_an_unpadded_pool(channels_last):
    # the definition (TensorFlow's SAME: pad (lo, hi) with -inf, pool without padding) against the network's pool,
    # on maps with ties (values rounded to one decimal), for every side the network accepts: values and gradients
    from cdb.models.lenet_ren import _pool
    torch.manual_seed(0)
    for side in range(4, 65):
        lo, hi = same_pool_padding(side)
        reference = torch.nn.Sequential(torch.nn.ConstantPad2d((lo, hi, lo, hi), float("-inf")),
                                        torch.nn.MaxPool2d(3, 2))
        layers, new_side = _pool(side)
        pool = torch.nn.Sequential(*layers)
        x = torch.randn(2, 3, side, side).round(decimals=1)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = reference(a), pool(b)
        assert yb.shape[-1] == new_side == math.ceil(side / 2)
        assert torch.equal(ya, yb)
        g = torch.randn_like(ya)
        ya.backward(g)
        yb.backward(g)
        assert torch.equal(a.grad, b.grad)


def test_checkpoint_keys_are_those_of_earlier_versions():
    # convolutions at features.0, .4 and .8 (conv, padding place, pool, ReLU per stage), as in records written before
    keys = [k for k in build_model("lenet_ren", 2, (1, 28, 28)).state_dict()]
    assert keys == ["features.0.weight", "features.0.bias", "features.4.weight", "features.4.bias",
                    "features.8.weight", "features.8.bias", "classifier.1.weight", "classifier.1.bias",
                    "classifier.3.weight", "classifier.3.bias"]
