"""Ren et al.'s MNIST network, the input scaling option, the step-counted presets and Ren's class-ratio IFW
(docs/protocol.md): pinned against values worked out by hand from their code and the paper's sec. 4.2."""
from __future__ import annotations

import math

import pytest
import torch

from conftest import compose
from cdb.data.mnist import build_mnist_imbalanced
from cdb.core.errors import CdbError
from cdb.losses import build_criterion
from cdb.models import build_model
from cdb.models.lenet_ren import same_pool_padding
from cdb.models.packed import PackedModel, can_pack
from cdb.train.config import TrainerConfig


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


def test_input_scale_unit_feeds_pixels_in_zero_one(mnist_dir):
    std = build_mnist_imbalanced(str(mnist_dir), n_train=100, val_per_class=5, test_per_class=5)
    unit = build_mnist_imbalanced(str(mnist_dir), n_train=100, val_per_class=5, test_per_class=5,
                                  input_scale="unit")
    assert (std.mean, std.std) == ((0.1307,), (0.3081,)) and (unit.mean, unit.std) == ((0.0,), (1.0,))
    assert torch.equal(std.train.x, unit.train.x) and unit.info["input_scale"] == "unit"
    with pytest.raises(CdbError, match="dataset.input_scale"):
        build_mnist_imbalanced(str(mnist_dir), input_scale="minmax")
    assert compose([]).dataset.input_scale == "standard"


def _schedule(preset):
    t = TrainerConfig.from_dict(dict(compose([f"trainer={preset}"]).trainer))
    return t, [t.lr_at(u) for u in range(t.length)]


def test_paper_numbers_read_as_steps():
    # sec. 4.2: 4000, lr 1e-3 x0.1 after 3000, wd 5e-4, momentum 0.9, batch 100; CDB update every 5000 images
    t, lrs = _schedule("mnist_steps")
    assert (t.unit, t.length, t.batch_size, t.momentum, t.weight_decay, t.eval_every) == \
        ("step", 4000, 100, 0.9, 5e-4, 50)
    assert lrs[2999] == pytest.approx(1e-3) and lrs[3000] == pytest.approx(1e-4) and lrs[-1] == pytest.approx(1e-4)


def test_ren_baseline_schedule():
    # mnist_train.py: 2 x 4000 steps, lr 1e-3 halved when 0-based step > 4000, momentum 0.9, no weight decay
    t, lrs = _schedule("mnist_ren")
    assert (t.unit, t.length, t.batch_size, t.momentum, t.weight_decay, t.eval_every) == \
        ("step", 8000, 100, 0.9, 0.0, 50)
    assert lrs[4000] == pytest.approx(1e-3) and lrs[4001] == pytest.approx(5e-4) and lrs[-1] == pytest.approx(5e-4)
    assert sum(lr == pytest.approx(1e-3) for lr in lrs) == 4001


def test_ren_class_ratio_weights_are_summed():
    # r = 0.99 of 5000: 50 fours, 4950 nines; a four weighs r = 0.99, a nine 1 - r = 0.01, summed over the batch
    cfg = dict(compose(["loss=ifw_ren"]).loss)
    crit = build_criterion(cfg, 2, torch.tensor([50, 4950]))
    torch.testing.assert_close(crit.weighting.weights, torch.tensor([0.99, 0.01]))
    logits, y = torch.zeros(4, 2), torch.tensor([0, 1, 1, 1])
    # every sample's CE is log 2: loss = (0.99 + 3 * 0.01) log 2
    assert crit(logits, y).item() == pytest.approx(1.02 * math.log(2), rel=1e-6)
    with pytest.raises(CdbError, match="loss.scale"):
        build_criterion({**cfg}, 3, torch.tensor([5, 50, 500]))
