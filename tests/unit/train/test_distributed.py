"""DDP: 2 CPU processes (gloo) train exactly what one process trains.

The pure parts (sharding, the loss shares, the count reduction) are checked
in-process against the single-process computation; the end-to-end test
spawns two real processes on real MNIST and compares with a one-process run (the `single` fixture; resuming a
DDP run: tests/slow/test_ddp_resume.py).
"""
from __future__ import annotations

import pytest
import torch

from cdb.data.augment import crop_flip
from cdb.data.base import DatasetSplits, TensorSplit
from cdb.core.errors import CdbError, ConfigError
from cdb.losses import build_criterion
from cdb.train import distributed as D
from cdb.train.batches import train_batches
from cdb.train.evaluate import EvalResult
from helpers.ddp import assert_same_run as _assert_same_run, data_root_of as _data_root, log_rows as _log
from helpers.ddp import mnist_cfg as _cfg, spawn_ddp as _ddp


# ---- pure parts --------------------------------------------------------------------------------------------


def test_bounds_cut_contiguous_parts_that_differ_by_at_most_one():
    assert [D._bounds(10, 3, r) for r in range(3)] == [(0, 4), (4, 7), (7, 10)]
    assert [D._bounds(4, 4, r) for r in range(4)] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert [D._bounds(41, 2, r) for r in range(2)] == [(0, 21), (21, 41)]


def test_torchrun_env_is_read_from_the_environment():
    assert D.torchrun_env({}) is None
    assert D.torchrun_env({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}) == D.LaunchEnv(3, 8, 1)
    with pytest.raises(CdbError, match="RANK=8"):
        D.torchrun_env({"RANK": "8", "WORLD_SIZE": "8"})


def test_only_rank_zero_lets_hydra_write(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert "hydra.output_subdir=null" in D.hydra_rank_overrides()
    monkeypatch.setenv("RANK", "0")
    assert D.hydra_rank_overrides() == []


def _dist(rank, world=2):
    return D.Dist(rank, world, rank, torch.device("cpu"))


def test_shards_are_disjoint_and_cover_every_global_batch():
    batches = [torch.tensor([5, 1, 9, 2, 7]), torch.tensor([3, 8, 0])]
    parts = [_dist(r).shard_batches(batches) for r in range(2)]
    assert [p.local.tolist() for p in parts[0]] == [[5, 1, 9], [3, 8]]
    assert [p.local.tolist() for p in parts[1]] == [[2, 7], [0]]
    assert all(p.total == len(b) for ps in parts for p, b in zip(ps, batches))
    with pytest.raises(ConfigError, match="trainer.batch_size"):
        _dist(0, world=4).shard_batches([torch.tensor([1, 2, 3])])


def _criterion(reduction, weights):
    crit = build_criterion({"base": "ce", "weighting": "none", "reduction": reduction}, 3, torch.tensor([5, 3, 1]))
    crit.weighting.weights = torch.tensor(weights)
    return crit


@pytest.mark.parametrize("reduction", ["mean", "weighted_mean"])
@pytest.mark.parametrize("weights", [[1.0, 1.0, 1.0], [0.2, 1.5, 3.0]])
def test_rank_losses_average_to_the_single_process_gradient(monkeypatch, reduction, weights):
    """DDP averages the ranks' gradients; with uneven shards (3 + 2 of 5) that must equal the full-batch gradient."""
    torch.manual_seed(0)
    w0 = torch.randn(4, 3)
    x, y = torch.randn(5, 4), torch.tensor([0, 2, 1, 2, 0])
    crit = _criterion(reduction, weights)
    full_w = w0.clone().requires_grad_(True)
    full = crit(x @ full_w, y)
    full.backward()
    if reduction == "weighted_mean":  # the all-reduce of the weight mass, done by hand for two ranks
        mass = torch.tensor(weights)[y].sum()
        monkeypatch.setattr(D.Dist, "all_reduce_sum", lambda self, t: mass.to(t.dtype))
    shard_of = _dist(0).shard_batches([torch.arange(5)])[0], _dist(1).shard_batches([torch.arange(5)])[0]
    grads, shares = [], []
    for r, shard in enumerate(shard_of):
        w = w0.clone().requires_grad_(True)
        i = shard.local
        share = _dist(r).reduce_loss(crit.per_sample(x[i] @ w, y[i]), crit.weighting.sample_weights(y[i]),
                                     reduction, shard)
        share.backward()
        grads.append(w.grad)
        shares.append(share.detach())
    torch.testing.assert_close((grads[0] + grads[1]) / 2, full_w.grad, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(shares[0] + shares[1], full.detach(), rtol=1e-6, atol=1e-7)


def test_reduce_eval_sums_counts(monkeypatch):
    monkeypatch.setattr(D.Dist, "all_reduce_sum", lambda self, t: t * 2)  # two ranks with equal counts
    res = EvalResult(torch.tensor([[3, 1], [0, 4]]), {1: 7, 2: 8})
    out = _dist(0).reduce_eval(res)
    assert out.confusion.tolist() == [[6, 2], [0, 8]]
    assert out.topk_correct == {1: 14, 2: 16}


def _tiny_data(augment="crop_flip"):
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (23, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.arange(23) % 3
    split = TensorSplit(x, y)
    return DatasetSplits("tiny", split, split, split, 3, ["a", "b", "c"], (3, 8, 8), (0.5,) * 3, (0.25,) * 3,
                         augment=augment)


def test_each_rank_gets_the_single_process_augmentation_of_its_rows():
    data = _tiny_data()
    batches = [torch.randperm(23, generator=torch.Generator().manual_seed(2))[:11]]
    (x1, y1), = list(train_batches(data, batches, "cpu", seed=4, first_step=9))
    parts = [list(train_batches(data, _dist(r).shard_batches(batches), "cpu", seed=4, first_step=9))[0]
             for r in range(2)]
    assert torch.equal(torch.cat([p[0] for p in parts]), x1)
    assert torch.equal(torch.cat([p[1] for p in parts]), y1)
    # and the augmentation really is random per row, so the check above can fail
    assert not torch.equal(x1, _unaugmented(data, batches))


def _unaugmented(data, batches):
    from cdb.data.augment import normalize

    return normalize(data.train.x[batches[0]], data.mean, data.std)


def test_crop_flip_is_applied_before_slicing():
    """The batched augmentation draws per global batch: a shard augmented alone would differ."""
    x = torch.randint(0, 256, (6, 1, 5, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    whole = crop_flip(x, torch.Generator().manual_seed(3), pad=2)
    alone = crop_flip(x[3:], torch.Generator().manual_seed(3), pad=2)
    assert not torch.equal(whole[3:], alone)


def test_evaluation_shards_count_every_sample_once():
    data = _tiny_data("none")
    parts = [_dist(r, world=3).shard_split(data.val) for r in range(3)]
    assert sum(len(p) for p in parts) == len(data.val)
    assert torch.equal(torch.cat([p.y for p in parts]), data.val.y)
    assert torch.equal(torch.cat([p.x for p in parts]), data.val.x)
    d = _dist(1, world=3)
    assert d.shard_split(data.val) is d.shard_split(data.val)  # cached: an on-device copy is made once

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return torch.zeros(1), i

    subsets = [_dist(r, world=3).shard_split(Items()) for r in range(3)]
    assert [list(s.indices) for s in subsets] == [[0, 1, 2], [3, 4], [5, 6]]


# ---- two real processes ------------------------------------------------------------------------------------


def test_two_gloo_processes_train_what_one_process_trains(single, tmp_path):
    ref_dir, ref_metrics = single
    # the CDB weights after epoch 2 are not uniform and accuracies are not all-or-nothing: the comparison can fail
    rows = _log(ref_dir)
    assert len(set(rows[1]["weights"])) == 2
    assert any(0 < a < 100 for r in rows for a in r["val_class_accuracy"])
    metrics = _ddp(_cfg(_data_root(ref_dir)), tmp_path)
    _assert_same_run(tmp_path, metrics, ref_dir, ref_metrics)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.pt", "last.pt"]


def _fail_on_rank_1(cfg, run_dir, dist):
    if dist.rank == 1:
        raise ConfigError("trainer.x=1 is not allowed on rank 1")
    dist.barrier()  # waits for rank 1, which never comes: spawn must end this process too
    return {}


def test_an_error_in_one_process_comes_back_as_one_line_and_ends_the_others(tmp_path):
    with pytest.raises(CdbError, match=r"^trainer.x=1 is not allowed on rank 1$"):
        D.spawn(_fail_on_rank_1, {}, str(tmp_path), 2, "cpu", "gloo", False)


def test_dataset_splits_load_only_the_rank_rows():
    """Folder/EGTEA-style Dataset splits go through a DataLoader: each rank loads just its slice."""

    class Items(torch.utils.data.Dataset):
        targets = [0, 1] * 5

        def __len__(self):
            return 10

        def __getitem__(self, i):
            return torch.tensor([float(i)]), self.targets[i]

    data = DatasetSplits("items", Items(), Items(), Items(), 2, ["a", "b"], (1,))
    batches = [torch.tensor([7, 2, 9, 4, 0]), torch.tensor([5, 1, 3])]
    seen = [[x.flatten().long().tolist() for x, _ in train_batches(data, _dist(r).shard_batches(batches), "cpu", 0, 0)]
            for r in range(2)]
    assert seen == [[[7, 2, 9], [5, 1]], [[4, 0], [3]]]
