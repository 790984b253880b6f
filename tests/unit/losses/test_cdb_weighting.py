"""CDB weights, dynamic tau and the CDB-CE loss against values computed by hand (paper eq. 2-7)."""
import math

import pytest
import torch
import torch.nn.functional as F

from cdb.core.errors import ConfigError
from cdb.losses import build_criterion
from cdb.losses.weighting import CDBWeighting, cdb_weights, dynamic_tau


def test_weights_follow_eq2_by_hand():
    acc = torch.tensor([0.9, 0.6, 0.2])
    w, note = cdb_weights(acc, tau=2.0, normalize="none")
    assert note == ""
    assert w.tolist() == pytest.approx([0.1 ** 2, 0.4 ** 2, 0.8 ** 2], abs=1e-6)


def test_mean_normalisation_rescales_to_sum_C():
    w, _ = cdb_weights(torch.tensor([0.9, 0.6, 0.2]), tau=1.0, normalize="mean")
    raw = [0.1, 0.4, 0.8]
    assert w.tolist() == pytest.approx([3 * r / sum(raw) for r in raw], abs=1e-6)
    assert float(w.sum()) == pytest.approx(3.0)


def test_tau_zero_gives_ones_even_for_perfect_classes():
    w, _ = cdb_weights(torch.tensor([1.0, 0.5]), tau=0.0)  # 0 ** 0 == 1
    assert w.tolist() == [1.0, 1.0]


def test_default_normalisation_is_the_authors_mean_one():
    # docs/protocol.md: "The authors' code rescales weights to sum to C (mean 1)"; the paper is silent.
    w, _ = cdb_weights(torch.tensor([0.5, 0.75]), tau=1.0)
    assert w.tolist() == pytest.approx([2 * 0.5 / 0.75, 2 * 0.25 / 0.75])
    assert CDBWeighting(2).normalize == "mean"


def test_all_classes_perfect_fallback_is_the_limit_of_its_neighbours():
    # equal difficulties d -> 0: under "mean" every weight is 1 for any d > 0; under "none" d^tau -> 0
    for normalize, fill in (("mean", 1.0), ("none", 0.0)):
        w, note = cdb_weights(torch.tensor([1.0, 1.0, 1.0]), tau=1.5, normalize=normalize)
        assert w.tolist() == [fill] * 3 and "100%" in note
        near, _ = cdb_weights(torch.tensor([1 - 1e-6] * 3), tau=1.5, normalize=normalize)
        assert near.tolist() == pytest.approx([fill] * 3, abs=1e-8)
    wt = CDBWeighting(2, tau="dynamic")
    info = wt.update(1, torch.tensor([1.0, 1.0]))
    assert info["weights"] == [1.0, 1.0] and "100%" in info["note"]


def test_class_without_validation_images_is_neutral_and_left_out_of_tau(caplog):
    acc = torch.tensor([0.9, 0.6, 0.0])  # class 2 has no validation images (its "accuracy" is a placeholder 0)
    support = torch.tensor([10, 10, 0])
    wt = CDBWeighting(3, tau="dynamic", normalize="none")
    with caplog.at_level("WARNING"):
        info = wt.update(1, acc, support)
        wt.update(2, acc, support)
    # tau from the two classes with images only: b = 0.9 / (0.6 + 1e-4) - 1 (eq. 4), not forced to 2
    b = 0.9 / (0.6 + 1e-4) - 1
    tau = 2 / (1 + math.exp(-b))
    assert info["tau"] == pytest.approx(tau)
    w0, w1 = 0.1 ** tau, 0.4 ** tau
    assert info["weights"] == pytest.approx([w0, w1, (w0 + w1) / 2], rel=1e-6)  # neutral = mean, not max
    assert sum("no validation images" in r.message for r in caplog.records) == 1  # warned once
    w, _ = cdb_weights(acc, tau=1.0, normalize="mean", valid=support > 0)
    assert w.tolist() == pytest.approx([2 * 0.1 / 0.5, 2 * 0.4 / 0.5, 1.0], rel=1e-6)


def test_dynamic_tau_paper_rule_by_hand():
    # b = max/(min + 1e-4) - 1 ; tau = 2 / (1 + exp(-b))
    b = 0.9 / (0.6 + 1e-4) - 1
    assert dynamic_tau(torch.tensor([0.6, 0.9])) == pytest.approx(2 / (1 + math.exp(-b)))
    assert dynamic_tau(torch.tensor([0.7, 0.7])) == pytest.approx(2 / (1 + math.exp(-(0.7 / 0.7001 - 1))))
    assert dynamic_tau(torch.tensor([0.0, 1.0])) == pytest.approx(2.0)  # b = 9999 saturates at 2


def test_dynamic_tau_authors_rules_by_hand():
    acc = torch.tensor([0.5, 0.8])
    assert dynamic_tau(acc, "authors_sigmoid") == pytest.approx(1 / (1 + math.exp(-0.8 / 0.51)))
    assert dynamic_tau(acc, "authors_2sigmoid") == pytest.approx(2 / (1 + math.exp(-(0.8 / 0.51 - 1))))
    with pytest.raises(ConfigError):
        dynamic_tau(acc, "nope")


def test_weighting_starts_uniform_then_updates_each_validation():
    wt = CDBWeighting(2, tau=1.0, normalize="none")
    assert wt.sample_weights(torch.tensor([0, 1])) is None  # plain CE before the first validation
    wt.update(1, torch.tensor([0.5, 0.75]))
    assert wt.sample_weights(torch.tensor([0, 1, 1])).tolist() == pytest.approx([0.5, 0.25, 0.25])
    wt.update(2, torch.tensor([0.9, 0.6]))
    assert wt.class_weights().tolist() == pytest.approx([0.1, 0.4])


def test_cdb_ce_loss_by_hand_and_tau0_equals_cross_entropy():
    logits = torch.tensor([[2.0, 0.5], [0.1, 0.3], [1.0, -1.0]])
    y = torch.tensor([0, 1, 1])
    crit = build_criterion({"base": "ce", "weighting": "cdb", "tau": 2.0, "normalize": "none"}, 2,
                           torch.tensor([10, 90]))
    crit.weighting.update(1, torch.tensor([0.5, 0.8]))  # w = [0.25, 0.04]
    logp = [l - math.log(math.exp(a) + math.exp(b)) for (a, b), l in
            zip(logits.tolist(), [logits[0, 0].item(), logits[1, 1].item(), logits[2, 1].item()])]
    expected = -(0.25 * logp[0] + 0.04 * logp[1] + 0.04 * logp[2]) / 3  # plain mean over the batch (eq. 7)
    assert float(crit(logits, y)) == pytest.approx(expected, rel=1e-6)

    ce0 = build_criterion({"base": "ce", "weighting": "cdb", "tau": 0}, 2, torch.tensor([10, 90]))
    ce0.weighting.update(1, torch.tensor([0.5, 1.0]))
    assert torch.allclose(ce0(logits, y), F.cross_entropy(logits, y))


def test_weighted_mean_reduction_by_hand():
    logits = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    y = torch.tensor([1, 0])
    crit = build_criterion({"base": "ce", "weighting": "cdb", "tau": 1.0, "reduction": "weighted_mean"}, 2,
                           torch.tensor([1, 1]))
    crit.weighting.update(1, torch.tensor([0.5, 0.75]))  # w = [0.5, 0.25]
    l0 = -(1.0 - math.log(1 + math.e))         # sample of class 1
    l1 = -(2.0 - math.log(math.exp(2) + 1))     # sample of class 0
    assert float(crit(logits, y)) == pytest.approx((0.25 * l0 + 0.5 * l1) / 0.75, rel=1e-6)


def test_stabilisers_floor_ema_warmup():
    w = CDBWeighting(2, tau=1.0, floor=0.05, normalize="none")
    w.update(1, torch.tensor([1.0, 0.7]))
    assert w.class_weights().tolist() == pytest.approx([0.05, 0.3])
    e = CDBWeighting(2, tau=1.0, ema=0.5, normalize="none")
    e.update(1, torch.tensor([0.0, 1.0]))
    e.update(2, torch.tensor([1.0, 0.0]))      # smoothed accuracies: [0.5, 0.5]
    assert e.class_weights().tolist() == pytest.approx([0.5, 0.5])
    u = CDBWeighting(2, tau=1.0, warmup=2, normalize="none")
    assert "warm-up" in u.update(1, torch.tensor([0.2, 0.9]))["note"]
    assert u.class_weights().tolist() == [1.0, 1.0]
    u.update(2, torch.tensor([0.2, 0.9]))
    u.update(3, torch.tensor([0.2, 0.9]))
    assert u.class_weights().tolist() == pytest.approx([0.8, 0.1])


def test_min_weight_is_relative_to_the_largest_weight():
    # d = (0.3, 0.0): eq. 2 gives (0.3^5, 0); min_weight 0.1 lifts the second to 0.1 * 0.3^5, for any tau
    w, _ = cdb_weights(torch.tensor([0.7, 1.0]), tau=5.0, min_weight=0.1, normalize="none")
    assert w.tolist() == pytest.approx([0.3 ** 5, 0.1 * 0.3 ** 5], rel=1e-5)
    w, _ = cdb_weights(torch.tensor([0.7, 0.96]), tau=1.0, min_weight=0.1, normalize="none")  # both above the bound: unchanged
    assert w.tolist() == pytest.approx([0.3, 0.04], rel=1e-5)
    w, _ = cdb_weights(torch.tensor([0.7, 1.0]), tau=2.0, normalize="mean", min_weight=0.1)
    assert w.tolist() == pytest.approx([2 / 1.1, 0.2 / 1.1], rel=1e-5)


def test_state_roundtrip():
    a = CDBWeighting(3, tau="dynamic", ema=0.3)
    a.update(1, torch.tensor([0.2, 0.5, 0.9]))
    b = CDBWeighting(3, tau="dynamic", ema=0.3)
    b.load_state_dict(a.state_dict())
    a.update(2, torch.tensor([0.6, 0.5, 0.4]))
    b.update(2, torch.tensor([0.6, 0.5, 0.4]))
    assert a.class_weights().tolist() == b.class_weights().tolist() and a.current_tau == b.current_tau


@pytest.mark.parametrize("bad", [{"tau": -1.0}, {"tau": "fast"}, {"tau": float("nan")}, {"normalize": "l2"},
                                 {"floor": 1.0}, {"ema": 1.5}, {"min_weight": 2.0}, {"warmup": -1}, {"tau_rule": "x"}, {"bogus": 1}])
def test_bad_settings_are_config_errors(bad):
    with pytest.raises(ConfigError):
        build_criterion({"base": "ce", "weighting": "cdb", **bad}, 2, torch.tensor([1, 1]))
