"""The seeded batch streams: an epoch unit is a seeded permutation, a step unit streams whole passes."""
import torch

from cdb.train.batches import steps_per_unit, unit_batches


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
