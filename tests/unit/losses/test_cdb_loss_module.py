"""`from cdb import CDBLoss`: the library's nn.Module against values computed by hand, its refusal of percent,
its counting helpers, devices and state_dict, and equality with the weights a real `cdb-run loss=cdb` logged."""
import math

import pytest
import torch

from cdb import CDBLoss, ClassBalancedLoss, FocalLoss, InverseFrequencyLoss, cdb_weights, dynamic_tau
from cdb import per_class_accuracy, per_class_counts
from helpers import FAST, cdb_run, read_log, run_dirs


def hand_weights(acc, tau, normalize="mean"):
    w = [(1 - a) ** tau for a in acc]
    return [x * len(w) / sum(w) for x in w] if normalize == "mean" else w


def test_update_gives_eq_2_to_4_by_hand():
    m = CDBLoss(3)
    assert m.weights.tolist() == [1.0, 1.0, 1.0]  # plain CE before the first update
    m.update(torch.tensor([0.95, 0.6, 0.2]))
    tau = 2 / (1 + math.exp(-(0.95 / (0.2 + 1e-4) - 1)))  # eq. 3-4, eps 1e-4
    assert float(m.tau) == pytest.approx(tau, rel=1e-7) and round(tau, 3) == 1.954
    assert m.weights.tolist() == pytest.approx(hand_weights([0.95, 0.6, 0.2], tau), rel=1e-6)
    assert [round(w, 4) for w in m.weights.tolist()] == [0.0105, 0.6133, 2.3761]


def test_fixed_tau_and_no_normalisation_by_hand():
    m = CDBLoss(2, tau=2.0, normalize="none")
    m.update([0.5, 0.8])
    assert m.weights.tolist() == pytest.approx([0.25, 0.04], rel=1e-6) and float(m.tau) == 2.0


@pytest.mark.parametrize("acc", [[95.0, 60.0, 20.0], [0.5, 1.5, 0.2], [0.5, -0.1, 0.2], [0.5, float("nan"), 0.2]])
def test_anything_but_fractions_is_refused_in_one_line(acc):
    m = CDBLoss(3)
    with pytest.raises(ValueError, match="percent must be divided by 100") as err:
        m.update(torch.tensor(acc))
    assert "\n" not in str(err.value)
    assert m.weights.tolist() == [1.0, 1.0, 1.0] and m.updates == 0  # nothing changed


def test_wrong_number_of_classes_is_refused():
    with pytest.raises(ValueError, match=r"one accuracy per class \(3,\)"):
        CDBLoss(3).update(torch.tensor([0.5, 0.5]))


def test_forward_is_the_weighted_batch_mean_by_hand():
    logits = torch.tensor([[2.0, 0.5], [0.1, 0.3], [1.0, -1.0]])
    y = torch.tensor([0, 1, 1])
    ce = [math.log(math.exp(2.0) + math.exp(0.5)) - 2.0, math.log(math.exp(0.1) + math.exp(0.3)) - 0.3,
          math.log(math.exp(1.0) + math.exp(-1.0)) + 1.0]
    m = CDBLoss(2, tau=2.0, normalize="none")
    assert float(m(logits, y)) == pytest.approx(sum(ce) / 3, rel=1e-6)  # weights 1: plain CE
    m.update([0.5, 0.8])  # w = [0.25, 0.04]
    per = [0.25 * ce[0], 0.04 * ce[1], 0.04 * ce[2]]
    assert float(m(logits, y)) == pytest.approx(sum(per) / 3, rel=1e-6)
    m.reduction = "weighted_mean"
    assert float(m(logits, y)) == pytest.approx(sum(per) / (0.25 + 0.04 + 0.04), rel=1e-6)
    m.reduction = "none"
    assert m(logits, y).tolist() == pytest.approx(per, rel=1e-6)


def test_counts_and_predictions_give_the_same_update_as_accuracies():
    # class 0: 3 of 4 right, class 1: 1 of 2, class 2: no validation sample (neutral weight, out of the tau rule)
    targets = torch.tensor([0, 0, 0, 0, 1, 1])
    preds = torch.tensor([0, 0, 0, 1, 1, 0])
    correct, total = per_class_counts(preds, targets, 3)
    assert correct.tolist() == [3, 1, 0] and total.tolist() == [4, 2, 0]
    assert per_class_accuracy(correct, total).tolist() == [0.75, 0.5, 0.0]
    a, b, c = CDBLoss(3), CDBLoss(3), CDBLoss(3)
    a.update_from_counts(correct, total)
    b.update_from_predictions(torch.nn.functional.one_hot(preds, 3).float() * 5, targets)  # logits
    c.update_from_predictions(preds, targets)  # labels
    tau = 2 / (1 + math.exp(-(0.75 / (0.5 + 1e-4) - 1)))
    w0, w1 = 0.25 ** tau, 0.5 ** tau
    hand = [3 * w / (w0 + w1 + (w0 + w1) / 2) for w in (w0, w1, (w0 + w1) / 2)]
    for m in (a, b, c):
        assert m.weights.tolist() == pytest.approx(hand, rel=1e-6) and float(m.tau) == pytest.approx(tau)


def test_counts_of_shards_sum_to_the_counts_of_the_whole_as_under_ddp():
    g = torch.Generator().manual_seed(0)
    targets, preds = torch.randint(0, 4, (100,), generator=g), torch.randint(0, 4, (100,), generator=g)
    shards = [per_class_counts(preds[i::2], targets[i::2], 4) for i in range(2)]
    summed = (shards[0][0] + shards[1][0], shards[0][1] + shards[1][1])  # what dist.all_reduce(SUM) gives
    whole = per_class_counts(preds, targets, 4)
    assert summed[0].tolist() == whole[0].tolist() and summed[1].tolist() == whole[1].tolist()
    with pytest.raises(ValueError, match="between 0 and total"):
        CDBLoss(4).update_from_counts(whole[1] + 1, whole[1])


def test_state_dict_round_trip_carries_weights_tau_smoothing_and_updates():
    a = CDBLoss(3, ema=0.3, warmup=1)
    a.update([0.2, 0.5, 0.9])
    a.update([0.6, 0.5, 0.4])
    state = a.state_dict()
    assert {"weights", "tau", "accuracy"} <= set(state)
    b = CDBLoss(3, ema=0.3, warmup=1)
    b.load_state_dict(state)
    assert b.weights.tolist() == a.weights.tolist() and float(b.tau) == float(a.tau) and b.updates == 2
    a.update([0.1, 0.7, 0.3])
    b.update([0.1, 0.7, 0.3])
    assert b.weights.tolist() == a.weights.tolist() and float(b.tau) == float(a.tau)
    # by hand: smoothed = 0.3 * (0.3 * A1 + 0.7 * A2) + 0.7 * A3
    s = [0.3 * (0.3 * x + 0.7 * y) + 0.7 * z for x, y, z in zip([0.2, 0.5, 0.9], [0.6, 0.5, 0.4], [0.1, 0.7, 0.3])]
    assert a.accuracy.tolist() == pytest.approx(s)


def test_buffers_follow_the_module_to_a_device():
    m = CDBLoss(3)
    m.update([0.95, 0.6, 0.2])
    on_meta = CDBLoss(3).to("meta")
    assert on_meta.weights.device.type == "meta"
    out = on_meta(torch.zeros(4, 3, device="meta"), torch.zeros(4, dtype=torch.long, device="meta"))
    assert out.device.type == "meta" and out.shape == ()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    logits, y = torch.randn(8, 3), torch.arange(8) % 3
    for dev in devices:
        moved = CDBLoss(3).to(dev)
        moved.load_state_dict(m.state_dict())
        assert moved.weights.device.type == dev and moved.tau.device.type == dev
        assert float(moved(logits.to(dev), y.to(dev))) == pytest.approx(float(m(logits, y)), rel=1e-5)
        moved.update(torch.tensor([0.5, 0.5, 0.25], device=dev))  # an update from the device's tensors
        assert moved.weights.device.type == dev


def test_huge_tau_never_reports_every_class_at_100_percent():
    # (1 - A)^1e300 underflows to 0 for both classes; the hardest class (A = 0.2 %) must lead, and no note may
    # claim that every class is at 100 %
    acc = torch.tensor([0.002, 0.996])
    w, note = cdb_weights(acc, tau=1e300)
    assert w.tolist() == [2.0, 0.0] and "100%" not in note and "logarithms" in note
    w, note = cdb_weights(acc, tau=1e300, normalize="none")
    assert w.tolist() == [0.0, 0.0] and "100%" not in note and "below the smallest float" in note
    m = CDBLoss(2, tau=1e300)
    m.update(acc)
    assert m.weights.tolist() == [2.0, 0.0] and "100%" not in m.note
    w, note = cdb_weights(torch.tensor([1.0, 1.0]), tau=1e300)  # a real 100 % still says so
    assert w.tolist() == [1.0, 1.0] and "100%" in note
    # just inside the range, the logarithms agree with the direct power: d = (0.5, 0.25), tau = 1000
    w, _ = cdb_weights(torch.tensor([0.5, 0.75]), tau=1000.0)
    assert w.tolist() == pytest.approx([2.0, 2 * 0.5 ** 1000 / (1 + 0.5 ** 1000)], abs=1e-30)


def test_dynamic_tau_and_the_static_modules_by_hand():
    assert dynamic_tau(torch.tensor([0.6, 0.9])) == pytest.approx(2 / (1 + math.exp(-(0.9 / 0.6001 - 1))))
    logits, y = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1])
    p = [math.exp(1) / (math.exp(1) + 1), math.exp(2) / (math.exp(2) + 1)]
    ce = [-math.log(q) for q in p]
    ifw = InverseFrequencyLoss([90, 10])  # 1/n rescaled to mean 1: [0.2, 1.8]
    assert ifw.weights.tolist() == pytest.approx([0.2, 1.8])
    assert float(ifw(logits, y)) == pytest.approx((0.2 * ce[0] + 1.8 * ce[1]) / 2, rel=1e-6)
    focal = FocalLoss(2, gamma=2.0)
    assert float(focal(logits, y)) == pytest.approx(sum((1 - q) ** 2 * c for q, c in zip(p, ce)) / 2, rel=1e-5)
    cb = ClassBalancedLoss([90, 10], beta=0.9)
    raw = [(1 - 0.9) / (1 - 0.9 ** n) for n in (90, 10)]
    assert cb.weights.tolist() == pytest.approx([2 * r / sum(raw) for r in raw], rel=1e-6)


def test_equal_to_the_weights_a_real_run_logged(tmp_path, mnist_dir):
    proc = cdb_run(tmp_path, "loss=cdb", *FAST, data=mnist_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = read_log(run_dirs(tmp_path / "out")[0])
    assert len(rows) == 2
    m = CDBLoss(2)
    for row in rows:  # the run logs accuracies in percent: a library user divides them by 100
        m.update(torch.tensor(row["val_class_accuracy"], dtype=torch.float64) / 100)
        assert m.weights.tolist() == pytest.approx(row["weights"], rel=1e-6, abs=1e-12)
        assert float(m.tau) == pytest.approx(row["tau"], rel=1e-9)
