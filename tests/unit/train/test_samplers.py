"""trainer.sampler (Kang et al. 2020, sec. 3): the class probabilities p_j ∝ n_j^q by hand, the class frequencies the
seeded batch plan draws against them within binomial tolerances, the same plan for the same seed, and a pack whose
runs each draw their own re-sampled batches training each run as it trains alone.

Tolerances: over N independent draws the count of class j is Binomial(N, p_j), standard deviation
sqrt(N p_j (1 - p_j)); every check allows 5 of them (a fair plan fails one with probability < 1e-6; the plans are
seeded, so each check is also deterministic).
"""
from __future__ import annotations

import math

import pytest
import torch

from cdb.core.errors import ConfigError
from cdb.train.batches import Sampling, class_probabilities, steps_per_unit, unit_batches
from cdb.train.config import TrainerConfig

LABELS = torch.tensor([0] * 90 + [1] * 10)   # counts 90 / 10


def _within(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p))


def test_class_probabilities_by_hand():
    counts = [90, 10]
    assert class_probabilities(counts, "instance").tolist() == [0.9, 0.1]
    assert class_probabilities(counts, "class_balanced").tolist() == [0.5, 0.5]
    # sqrt: sqrt(90) : sqrt(10) = 3 sqrt(10) : sqrt(10) = 3 : 1
    assert class_probabilities(counts, "sqrt").tolist() == pytest.approx([0.75, 0.25], abs=1e-12)
    # progressive, T = 4: t = 0 is instance-balanced; t = 2: (1 - 1/2) (0.9, 0.1) + 1/2 (0.5, 0.5) = (0.7, 0.3);
    # t = 3: 1/4 (0.9, 0.1) + 3/4 (0.5, 0.5) = (0.6, 0.4)
    assert class_probabilities(counts, "progressive", 0, 4).tolist() == pytest.approx([0.9, 0.1], abs=1e-12)
    assert class_probabilities(counts, "progressive", 2, 4).tolist() == pytest.approx([0.7, 0.3], abs=1e-12)
    assert class_probabilities(counts, "progressive", 3, 4).tolist() == pytest.approx([0.6, 0.4], abs=1e-12)
    # a class without training samples is never drawn, even where q = 0 would give it n^0 = 1
    assert class_probabilities([4, 0, 4], "class_balanced").tolist() == [0.5, 0.0, 0.5]


def _drawn(sampler: str, units: int, batch_size: int = 100, unit: str = "epoch", seed: int = 3, length: int = 1,
           first: int = 0) -> torch.Tensor:
    s = Sampling(sampler, LABELS, 2, length)
    return torch.cat([b for u in range(first, first + units) for b in unit_batches(100, batch_size, unit, u, seed, s)])


def test_class_balanced_draws_90_10_as_50_50():
    idx = _drawn("class_balanced", 100)          # 100 epochs of 100 draws: N = 10,000
    n = len(idx)
    assert n == 10_000
    minority = int((LABELS[idx] == 1).sum())
    assert _within(minority, n, 0.5), minority   # 5000 ± 250
    # uniform within a class: each of the 10 minority samples is drawn with probability 0.5 / 10 = 0.05
    per_sample = torch.bincount(idx, minlength=100)[90:]
    assert all(_within(int(c), n, 0.05) for c in per_sample), per_sample.tolist()   # 500 ± 109 each


def test_sqrt_draws_90_10_as_3_to_1():
    idx = _drawn("sqrt", 100)
    majority = int((LABELS[idx] == 0).sum())
    assert _within(majority, len(idx), 0.75), majority   # 7500 ± 217


def test_progressive_moves_from_instance_to_class_balanced():
    # one step of 20,000 draws at unit 2 of T = 4: p_0 = 0.7 (hand-computed above), 14000 ± 324
    idx = _drawn("progressive", 1, batch_size=20_000, unit="step", length=4, first=2)
    assert _within(int((LABELS[idx] == 0).sum()), 20_000, 0.7)
    first = _drawn("progressive", 1, batch_size=20_000, unit="step", length=4, first=0)
    assert _within(int((LABELS[first] == 0).sum()), 20_000, 0.9)   # t = 0: instance-balanced, 18000 ± 212


def test_same_seed_same_plan_and_instance_is_todays_plan():
    s = Sampling("class_balanced", LABELS, 2, 10)
    a = unit_batches(100, 30, "epoch", 4, seed=5, sampling=s)
    b = unit_batches(100, 30, "epoch", 4, seed=5, sampling=Sampling("class_balanced", LABELS, 2, 10))
    assert len(a) == steps_per_unit(100, 30, "epoch") == 4 and [len(x) for x in a] == [30, 30, 30, 10]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(torch.cat(a), torch.cat(unit_batches(100, 30, "epoch", 4, seed=6, sampling=s)))
    assert not torch.equal(torch.cat(a), torch.cat(unit_batches(100, 30, "epoch", 5, seed=5, sampling=s)))
    step = unit_batches(100, 30, "step", 7, seed=5, sampling=s)
    assert len(step) == 1 and torch.equal(step[0], unit_batches(100, 30, "step", 7, seed=5, sampling=s)[0])
    # instance sampling is the shuffled passes of before, unchanged
    inst = Sampling("instance", LABELS, 2, 10)
    for unit in ("epoch", "step"):
        old, new = unit_batches(100, 30, unit, 2, 5), unit_batches(100, 30, unit, 2, 5, inst)
        assert all(torch.equal(x, y) for x, y in zip(old, new))


def test_trainer_sampler_is_checked():
    assert TrainerConfig().sampler == "instance"
    with pytest.raises(ConfigError, match="trainer.sampler='balanced' is not allowed"):
        TrainerConfig(sampler="balanced").validate()


def test_a_pack_of_resampled_runs_trains_each_run_as_alone(tmp_path):
    """Two runs with their own labels and seeds, class-balanced: packed, each gets what it gets alone."""
    from cdb.data.base import DatasetSplits, TensorSplit
    from cdb.losses import build_criterion
    from cdb.models.lenet import LeNet5
    from cdb.train.loop import fit
    from cdb.train.run import RunState

    def run(root, i):
        g = torch.Generator().manual_seed(i)
        y = (torch.arange(120) < 100 - 30 * i).long()   # 100:20 and 70:50
        split = TensorSplit(torch.randint(0, 256, (120, 1, 28, 28), dtype=torch.uint8, generator=g), y)
        data = DatasetSplits("t", split, split, split, 2, ["a", "b"], (1, 28, 28), (0.5,), (0.25,))
        torch.manual_seed(i)
        cfg = TrainerConfig(unit="step", length=6, eval_every=3, batch_size=20, lr=0.05, device="cpu",
                            progress=False, sampler="class_balanced")
        return RunState(LeNet5(2), data, build_criterion({"base": "ce", "weighting": "none"}, 2,
                                                          data.class_counts), cfg, root / f"run{i}", seed=i)

    packed = [run(tmp_path / "pack", i) for i in (0, 1)]
    for t in packed:   # each run's step draws half of its batch, on average, from either class: its own labels
        ys = torch.cat([y for u in range(6) for _, y, _ in t.batches(u)])
        assert _within(int((ys == 1).sum()), len(ys), 0.5)
    fit(packed)
    for i, t in enumerate(packed):
        alone = run(tmp_path / "alone", i)
        fit([alone])
        for name, p in alone.model.state_dict().items():
            assert torch.allclose(p, t.model.state_dict()[name], atol=1e-5), (i, name)
