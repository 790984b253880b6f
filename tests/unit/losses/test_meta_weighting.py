"""L2RW and Meta-Weight-Net: the meta step favours samples whose gradient agrees with the validation gradient.

The cases are a bias-free linear model on 2-d inputs, where per-sample gradients
are (p - e_y) x^T and their dot products with the validation gradient can be
worked out by hand.
"""
from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from cdb.core.errors import CdbError, ConfigError
from cdb.losses import Criterion, build_criterion
from cdb.losses.functional import cross_entropy
from cdb.losses.l2rw import LearningToReweight
from cdb.losses.mwn import MetaWeightNet
from cdb.train.loss import StepContext


def linear(weight=None) -> nn.Module:
    m = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        m.weight.copy_(torch.zeros(2, 2) if weight is None else torch.tensor(weight))
    return m


def context(model, x, y, xv, yv, criterion, lr=1.0) -> StepContext:
    return StepContext(model, torch.tensor(x), torch.tensor(y), lr, criterion, lambda: (torch.tensor(xv),
                                                                                         torch.tensor(yv)), 0)


def roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


# ---- L2RW --------------------------------------------------------------------------------------------------
def test_l2rw_weights_agreeing_sample_and_zeroes_opposing_one():
    # W = 0: p = (1/2, 1/2). Validation sample x=(1,0), y=0: grad = (-1/2, 1/2)^T (1,0).
    # Train A = the same sample (dot +1/2), B: x=(1,0), y=1 (dot -1/2), C: x=(0,1), y=0 (dot 0).
    w = LearningToReweight(2)
    crit = Criterion(cross_entropy, w, "sum")
    ctx = context(linear(), [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [0, 1, 0], [[1.0, 0.0]], [0], crit)
    assert w.sample_weights(ctx.targets, ctx).tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)


def test_l2rw_weights_are_normalised_gradient_agreement():
    # A: x=(1,0), B: x=(2,0), both y=0: dots 1/2 and 1 with the validation gradient -> weights 1/3, 2/3
    w = LearningToReweight(2)
    crit = Criterion(cross_entropy, w, "sum")
    ctx = context(linear(), [[1.0, 0.0], [2.0, 0.0], [1.0, 0.0]], [0, 0, 1], [[1.0, 0.0]], [0], crit, lr=0.1)
    assert w.sample_weights(ctx.targets, ctx).tolist() == pytest.approx([1 / 3, 2 / 3, 0.0], abs=1e-6)


def test_l2rw_all_opposing_gives_zero_weights():
    w = LearningToReweight(2)
    ctx = context(linear(), [[1.0, 0.0]], [1], [[1.0, 0.0]], [0], Criterion(cross_entropy, w, "sum"))
    assert w.sample_weights(ctx.targets, ctx).tolist() == [0.0]


def test_l2rw_criterion_is_weighted_sum_of_losses():
    crit = build_criterion({"name": "l2rw", "base": "ce", "weighting": "l2rw"}, 2, torch.tensor([90, 10]))
    assert crit.reduction == "sum"
    model = linear([[0.3, -0.2], [0.1, 0.4]])
    x, y = [[1.0, 0.0], [2.0, 0.5], [0.0, 1.0], [1.0, 1.0]], [0, 0, 1, 1]
    ctx = context(model, x, y, [[1.0, 0.2], [0.1, 1.0]], [0, 1], crit)
    loss = crit(model(ctx.inputs), ctx.targets, ctx)
    w = crit.weighting.sample_weights(ctx.targets, ctx)
    assert float(w.sum()) == pytest.approx(1.0)
    per = [-math.log(math.exp(r[k]) / sum(math.exp(v) for v in r)) for r, k in zip(model(ctx.inputs).tolist(), y)]
    assert float(loss.detach()) == pytest.approx(sum(wi * li for wi, li in zip(w.tolist(), per)), rel=1e-5)


def test_meta_weighting_needs_a_step_context():
    with pytest.raises(CdbError, match="LearningToReweight"):
        LearningToReweight(2).sample_weights(torch.tensor([0, 1]), None)


def test_meta_step_leaves_batchnorm_statistics_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for weighting in (LearningToReweight(2), MetaWeightNet(2, meta_lr=0.1)):
        crit = Criterion(cross_entropy, weighting, weighting.required_reduction)
        ctx = StepContext(model, torch.randn(8, 2), torch.randint(0, 2, (8,)), 0.1, crit,
                          lambda: (torch.randn(6, 2), torch.randint(0, 2, (6,))), 0)
        w = weighting.sample_weights(ctx.targets, ctx)
        assert torch.isfinite(w).all() and w.shape == (8,)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model[1].track_running_stats


def test_meta_per_class_draws_a_fixed_balanced_set_and_keeps_it():
    batches = iter([(torch.arange(6.0)[:, None].repeat(1, 2), torch.tensor([1, 1, 1, 0, 1, 1])),
                    (torch.arange(6.0, 12.0)[:, None].repeat(1, 2), torch.tensor([0, 0, 1, 0, 0, 0]))])
    w = LearningToReweight(2, meta_per_class=2)
    crit = Criterion(cross_entropy, w, "sum")
    ctx = StepContext(linear(), torch.ones(2, 2), torch.tensor([0, 1]), 1.0, crit, lambda: next(batches), 0)
    x1, y1 = w.meta_batch(ctx)
    assert sorted(y1.tolist()) == [0, 0, 1, 1]
    assert sorted(x1[:, 0].tolist()) == [0.0, 1.0, 3.0, 6.0]   # first two of each class in stream order
    x2, y2 = w.meta_batch(ctx)                                    # no further draw (the stream is exhausted)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    again = LearningToReweight(2, meta_per_class=2)
    again.load_state_dict(roundtrip(w.state_dict()))
    assert torch.equal(again.meta_batch(ctx)[0], x1)


def test_meta_per_class_too_large_is_a_config_error():
    w = LearningToReweight(2, meta_per_class=3)
    ctx = StepContext(linear(), torch.ones(2, 2), torch.tensor([0, 1]), 1.0, Criterion(cross_entropy, w, "sum"),
                      lambda: (torch.ones(4, 2), torch.tensor([0, 0, 0, 1])), 0)
    with pytest.raises(ConfigError, match="loss.meta_per_class=3"):
        w.meta_batch(ctx)


# ---- Meta-Weight-Net ---------------------------------------------------------------------------------------
def increasing_mwn(normalize: bool) -> MetaWeightNet:
    """An MW-Net whose initial V(l) = sigmoid(0.5 l) grows with the loss, i.e. favours the high-loss sample."""
    mwn = MetaWeightNet(2, meta_lr=0.5, meta_optimizer="sgd", meta_momentum=0.0, meta_weight_decay=0.0,
                        normalize=normalize)
    with torch.no_grad():
        first, last = mwn.net[0], mwn.net[2]
        first.weight.fill_(1.0)
        first.bias.zero_()
        last.weight.fill_(0.5 / first.out_features)
        last.bias.zero_()
    return mwn


@pytest.mark.parametrize("normalize", [True, False])
def test_mwn_meta_step_favours_the_sample_that_agrees_with_validation(normalize):
    # W maps x=(1,0) to logits (1, -1). A: (x, y=0), loss log(1+e^-2) = 0.13, gradient along the validation
    # gradient (validation = the same sample). B: (x, y=1), loss log(1+e^2) = 2.13, gradient against it.
    mwn = increasing_mwn(normalize)
    crit = Criterion(cross_entropy, mwn, mwn.required_reduction)
    ctx = context(linear([[1.0, 0.0], [-1.0, 0.0]]), [[1.0, 0.0], [1.0, 0.0]], [0, 1], [[1.0, 0.0]], [0], crit)
    losses = torch.tensor([math.log(1 + math.exp(-2)), math.log(1 + math.exp(2))])
    v0 = [1 / (1 + math.exp(-0.5 * float(l))) for l in losses]
    assert v0[1] > v0[0]                                            # initially B gets more weight
    for _ in range(30):
        w = mwn.sample_weights(ctx.targets, ctx)
    assert float(w[0]) > float(w[1])                                # the meta steps turned it around
    if normalize:
        assert float(w.sum()) == pytest.approx(1.0)


def test_mwn_state_round_trips_through_a_weights_only_checkpoint():
    mwn = MetaWeightNet(2, meta_lr=0.1)                             # SGD with momentum: optimizer has state
    crit = Criterion(cross_entropy, mwn, "sum")
    model = linear([[0.5, -0.3], [0.2, 0.1]])
    ctx = context(model, [[1.0, 0.0], [0.3, 1.0], [1.0, 1.0]], [0, 1, 1], [[1.0, 0.2], [0.0, 1.0]], [0, 1], crit)
    mwn.sample_weights(ctx.targets, ctx)
    mwn.update(1, torch.tensor([0.5, 0.5]))
    state = roundtrip(mwn.state_dict())
    torch.manual_seed(123)
    other = MetaWeightNet(2, meta_lr=0.1)                           # a differently initialised MLP
    other.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(mwn.net.state_dict().values(), other.net.state_dict().values()))
    ctx2 = context(model, [[1.0, 0.0], [0.3, 1.0], [1.0, 1.0]], [0, 1, 1], [[1.0, 0.2], [0.0, 1.0]], [0, 1],
                   Criterion(cross_entropy, other, "sum"))
    assert torch.equal(mwn.sample_weights(ctx.targets, ctx), other.sample_weights(ctx2.targets, ctx2))


def test_mwn_options_are_checked():
    with pytest.raises(ConfigError, match="loss.meta_optimizer"):
        MetaWeightNet(2, meta_optimizer="rmsprop")
    crit = build_criterion({"name": "mwn", "weighting": "mwn", "normalize": False}, 2, torch.tensor([9, 1]))
    assert crit.reduction == "mean"


def test_meta_weightings_log_mean_weight_per_class():
    w = LearningToReweight(2)
    crit = Criterion(cross_entropy, w, "sum")
    ctx = context(linear(), [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [0, 1, 0], [[1.0, 0.0]], [0], crit)
    w.sample_weights(ctx.targets, ctx)            # weights (1, 0, 0): x batch size 3 -> class 0 mean 1.5, class 1 0
    info = w.update(1, torch.tensor([0.5, 0.5]))
    assert info["weights"] == pytest.approx([1.5, 0.0])
