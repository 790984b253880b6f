"""Base losses against values derived by hand in plain python (math), never by calling the implementation."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cdb.core.errors import ConfigError
from cdb.losses.functional import cross_entropy, equalization, focal, reduce_weighted
from cdb.losses.prior import balanced_softmax, ldam, ldam_margins, logit_adjust

LOGITS = [[2.0, 0.5, -1.0], [0.1, -0.3, 0.7]]
TARGETS = [1, 2]


def softmax(z):
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def ce_hand(z, k):
    return -math.log(softmax(z)[k])


def t(x):
    return torch.tensor(x, dtype=torch.float32)


def y():
    return torch.tensor(TARGETS)


def test_cross_entropy_matches_hand_values():
    want = [ce_hand(z, k) for z, k in zip(LOGITS, TARGETS)]
    assert cross_entropy(t(LOGITS), y()).tolist() == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_focal_matches_hand_values(gamma):
    want = []
    for z, k in zip(LOGITS, TARGETS):
        p = softmax(z)[k]
        want.append(-((1 - p) ** gamma) * math.log(p))
    assert focal(t(LOGITS), y(), gamma=gamma).tolist() == pytest.approx(want, rel=1e-5)


def test_focal_gamma_zero_is_cross_entropy():
    z = torch.randn(16, 5, generator=torch.Generator().manual_seed(0))
    tg = torch.randint(0, 5, (16,), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(focal(z, tg, gamma=0.0), F.cross_entropy(z, tg, reduction="none"), atol=1e-6)


def test_focal_gradient_finite_when_confident():
    # p_k -> 1 makes d(1-p)^gamma/dp infinite for gamma < 1 unless guarded (Cui et al.'s NaN remark)
    z = torch.tensor([[60.0, 0.0], [0.0, 1.0]], requires_grad=True)
    focal(z, torch.tensor([0, 1]), gamma=0.5).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_focal_rejects_negative_gamma():
    with pytest.raises(ConfigError, match="loss.gamma"):
        focal(t(LOGITS), y(), gamma=-1.0)


# ---- LDAM --------------------------------------------------------------------------------------------------
def test_ldam_margins_follow_quarter_power():
    m = ldam_margins(torch.tensor([10000, 100, 1]), max_margin=0.5).tolist()
    # n^-1/4 = 0.1, 0.316..., 1 -> scaled so the largest (rarest class) is 0.5
    assert m == pytest.approx([0.05, 0.5 * 100 ** -0.25, 0.5], rel=1e-6)


def test_ldam_matches_hand_values():
    counts = torch.tensor([100, 1, 16])
    s, mmax = 30.0, 0.5
    raw = [100 ** -0.25, 1.0, 16 ** -0.25]
    margins = [mmax * r / max(raw) for r in raw]
    want = []
    for z, k in zip(LOGITS, TARGETS):
        shifted = [s * (v - (margins[k] if j == k else 0.0)) for j, v in enumerate(z)]
        want.append(ce_hand(shifted, k))
    got = ldam(t(LOGITS), y(), counts, max_margin=mmax, scale=s).tolist()
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_ldam_zero_margin_unit_scale_is_cross_entropy():
    got = ldam(t(LOGITS), y(), torch.tensor([5, 50, 500]), max_margin=0.0, scale=1.0)
    assert got.tolist() == pytest.approx([ce_hand(z, k) for z, k in zip(LOGITS, TARGETS)], rel=1e-5)


def test_ldam_zero_margin_is_cross_entropy_of_scaled_logits():
    got = ldam(t(LOGITS), y(), torch.tensor([5, 50, 500]), max_margin=0.0, scale=30.0)
    want = [ce_hand([30 * v for v in z], k) for z, k in zip(LOGITS, TARGETS)]
    assert got.tolist() == pytest.approx(want, rel=1e-5, abs=1e-6)


# ---- prior-shifted softmax --------------------------------------------------------------------------------
def test_balanced_softmax_matches_hand_values():
    counts = [90, 9, 1]
    want = [ce_hand([v + math.log(n) for v, n in zip(z, counts)], k) for z, k in zip(LOGITS, TARGETS)]
    assert balanced_softmax(t(LOGITS), y(), torch.tensor(counts)).tolist() == pytest.approx(want, rel=1e-5)


def test_logit_adjust_matches_hand_values():
    counts, tau = [90, 9, 1], 0.7
    prior = [n / 100 for n in counts]
    want = [ce_hand([v + tau * math.log(p) for v, p in zip(z, prior)], k) for z, k in zip(LOGITS, TARGETS)]
    got = logit_adjust(t(LOGITS), y(), torch.tensor(counts), adjust_tau=tau).tolist()
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_zero_prior_adjustment_is_cross_entropy():
    ce = [ce_hand(z, k) for z, k in zip(LOGITS, TARGETS)]
    assert logit_adjust(t(LOGITS), y(), torch.tensor([90, 9, 1]), adjust_tau=0.0).tolist() == pytest.approx(ce)
    # equal counts shift every logit by the same constant: no adjustment
    assert balanced_softmax(t(LOGITS), y(), torch.tensor([7, 7, 7])).tolist() == pytest.approx(ce, rel=1e-5)


def test_logit_adjust_tau_one_equals_balanced_softmax():
    counts = torch.tensor([300, 20, 3])
    assert torch.allclose(logit_adjust(t(LOGITS), y(), counts, adjust_tau=1.0),
                          balanced_softmax(t(LOGITS), y(), counts), atol=1e-6)


# ---- equalization loss ------------------------------------------------------------------------------------
def test_eql_always_dropping_rare_negatives():
    # counts 10/30/960: classes 0 and 1 are rare below lambda = 0.05; gamma = 1 always drops them as negatives
    counts = torch.tensor([10, 30, 960])
    z = [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.5, -0.5, 0.2]]
    tg = torch.tensor([2, 0, 1])
    want = [
        math.log(math.exp(3.0)) - 3.0,                    # target 2: both rare negatives dropped -> 0
        math.log(math.exp(1.0) + math.exp(3.0)) - 1.0,    # target 0: rare class 1 dropped, frequent 2 kept
        math.log(math.exp(-0.5) + math.exp(0.2)) + 0.5,   # target 1: rare class 0 dropped
    ]
    got = equalization(t(z), tg, counts, freq_threshold=0.05, gamma=1.0).tolist()
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_eql_reduces_to_cross_entropy():
    counts = torch.tensor([10, 30, 960])
    ce = [ce_hand(z, k) for z, k in zip(LOGITS, TARGETS)]
    assert equalization(t(LOGITS), y(), counts, freq_threshold=0.05, gamma=0.0).tolist() == pytest.approx(ce)
    # no class below the threshold: nothing is ever dropped
    assert equalization(t(LOGITS), y(), counts, freq_threshold=0.001, gamma=1.0).tolist() == pytest.approx(ce)


def test_eql_drop_probability_is_gamma():
    # two classes, the minority (1%) rare: a majority sample loses its only negative with probability gamma,
    # so its expected loss is (1 - gamma) * CE (a dropped entry leaves loss 0)
    torch.manual_seed(0)
    n, gamma = 20000, 0.3
    z = torch.tensor([[0.4, -0.2]]).repeat(n, 1)
    losses = equalization(z, torch.zeros(n, dtype=torch.long), torch.tensor([99, 1]), 0.05, gamma)
    ce = ce_hand([0.4, -0.2], 0)
    assert float(losses.mean()) == pytest.approx((1 - gamma) * ce, rel=0.03)
    assert float((losses == 0).float().mean()) == pytest.approx(gamma, abs=0.015)


# ---- gradients and reduction -------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda z, tg: cross_entropy(z, tg),
    lambda z, tg: focal(z, tg, gamma=2.0),
    lambda z, tg: equalization(z, tg, torch.tensor([5, 20, 975]), 0.05, 0.9),
    lambda z, tg: ldam(z, tg, torch.tensor([5, 20, 975])),
    lambda z, tg: balanced_softmax(z, tg, torch.tensor([5, 20, 975])),
    lambda z, tg: logit_adjust(z, tg, torch.tensor([5, 20, 975])),
], ids=["ce", "focal", "eql", "ldam", "balanced_softmax", "logit_adjust"])
def test_gradients_finite_and_nonzero(fn):
    z = (torch.randn(32, 3, generator=torch.Generator().manual_seed(3)) * 5).requires_grad_()
    tg = torch.randint(0, 3, (32,), generator=torch.Generator().manual_seed(4))
    loss = fn(z, tg)
    assert loss.shape == (32,) and torch.isfinite(loss).all()
    loss.mean().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_reduce_weighted_modes():
    losses, w = t([1.0, 2.0, 4.0]), t([0.5, 0.25, 0.25])
    assert float(reduce_weighted(losses, w, "sum")) == pytest.approx(0.5 + 0.5 + 1.0)
    assert float(reduce_weighted(losses, w, "mean")) == pytest.approx(2.0 / 3)
    assert float(reduce_weighted(losses, w, "weighted_mean")) == pytest.approx(2.0 / 1.0)
    assert float(reduce_weighted(losses, None, "sum")) == pytest.approx(7.0)
