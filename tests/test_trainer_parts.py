"""Pieces of the loop: LeNet-5's shape, the lr schedule, and the seeded batch streams."""
import pytest
import torch

from cdb.core.errors import CdbError
from cdb.models import build_model
from cdb.train.batches import steps_per_unit, unit_batches
from cdb.train.config import TrainerConfig


def test_lenet5_shape_and_parameter_count():
    m = build_model("lenet5", 2, (1, 28, 28))
    assert m(torch.zeros(4, 1, 28, 28)).shape == (4, 2)
    # conv1 1*6*25+6, conv2 6*16*25+16, fc 400*120+120, 120*84+84, 84*2+2 (LeCun 1998 layer sizes)
    expected = (1 * 6 * 25 + 6) + (6 * 16 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 2 + 2)
    assert sum(p.numel() for p in m.parameters()) == expected == 61026


def test_lenet5_pool_then_relu_is_the_textbook_conv_relu_pool():
    """LeNet5 runs conv-pool-ReLU (cheaper); outputs and every gradient equal the textbook conv-ReLU-pool
    order exactly, including windows with tied or all-negative values (flat image background)."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    m = build_model("lenet5", 2, (1, 28, 28))
    x = torch.randn(16, 1, 28, 28)
    x[:, :, :8] = -0.4242                     # a flat band: every window there is a tie
    x[::2] = x[::2].clamp_min(-0.4242)
    y = torch.randint(0, 2, (16,))

    def textbook(p):
        h = F.max_pool2d(F.relu(F.conv2d(x, p["features.0.weight"], p["features.0.bias"], padding=2)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p["features.3.weight"], p["features.3.bias"])), 2).flatten(1)
        h = F.relu(F.linear(h, p["classifier.1.weight"], p["classifier.1.bias"]))
        h = F.relu(F.linear(h, p["classifier.3.weight"], p["classifier.3.bias"]))
        return F.linear(h, p["classifier.5.weight"], p["classifier.5.bias"])

    params = dict(m.named_parameters())
    out_ref = textbook(params)
    grads_ref = torch.autograd.grad(F.cross_entropy(out_ref, y), list(params.values()))
    out = m(x)
    grads = torch.autograd.grad(F.cross_entropy(out, y), list(params.values()))
    assert torch.equal(out, out_ref)
    for g, g_ref in zip(grads, grads_ref):
        assert torch.equal(g, g_ref)


def test_lr_schedule_milestones_and_warmup():
    c = TrainerConfig.from_dict({"lr": 0.1, "milestones": [160, 180], "gamma": 0.01, "warmup": 5})
    assert c.lr_at(0) == pytest.approx(0.1 / 5) and c.lr_at(4) == pytest.approx(0.1)
    assert c.lr_at(159) == pytest.approx(0.1) and c.lr_at(160) == pytest.approx(1e-3)
    assert c.lr_at(180) == pytest.approx(1e-5)


def test_bad_trainer_settings():
    with pytest.raises(CdbError, match="trainer.unit"):
        TrainerConfig.from_dict({"unit": "fortnight"})
    with pytest.raises(CdbError, match="trainer.lrr"):
        TrainerConfig.from_dict({"lrr": 0.1})
    with pytest.raises(CdbError, match="trainer.select"):
        TrainerConfig.from_dict({"select": "test"})


def test_epoch_unit_is_a_seeded_permutation():
    b = unit_batches(1050, 100, "epoch", u=3, seed=7)
    assert steps_per_unit(1050, 100, "epoch") == len(b) == 11 and len(b[-1]) == 50
    assert sorted(torch.cat(b).tolist()) == list(range(1050))
    assert all(torch.equal(x, y) for x, y in zip(b, unit_batches(1050, 100, "epoch", u=3, seed=7)))
    assert not torch.equal(torch.cat(b), torch.cat(unit_batches(1050, 100, "epoch", u=4, seed=7)))


def test_step_unit_streams_whole_passes():
    n, bs = 250, 100  # passes do not align with batches: batch 2 spans passes 0 and 1
    stream = torch.cat([unit_batches(n, bs, "step", u, seed=1)[0] for u in range(5)])  # 500 = 2 passes
    assert len(stream) == 500
    assert sorted(stream[:250].tolist()) == list(range(250)) and sorted(stream[250:].tolist()) == list(range(250))
