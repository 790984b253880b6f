"""Long-tailed CIFAR: the exponential profile, the validation hold-out and the builder on real-format pickles."""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from cdb.data import build_dataset
from cdb.data.cifar import load_cifar
from cdb.data.longtail import longtail_counts
from cdb.core.errors import ConfigError, DataError
from helpers.datasets import expected_counts, write_cifar100

IMBALANCES = (200, 100, 50, 20, 10, 1)


@pytest.mark.parametrize("imbalance", IMBALANCES)
@pytest.mark.parametrize("n_max,classes", [(450, 100), (4950, 10)])
def test_profile_matches_formula(n_max, classes, imbalance):
    counts = longtail_counts(n_max, classes, imbalance)
    assert counts == expected_counts(n_max, classes, imbalance)
    assert counts[0] == n_max
    assert counts[-1] == math.floor(n_max / imbalance)  # smallest class: n_max / imbalance
    assert all(a >= b for a, b in zip(counts, counts[1:]))


def test_profile_last_class_by_hand():
    # 450 / imbalance, floored: 2.25, 4.5, 9, 22.5, 45, 450
    assert [longtail_counts(450, 100, i)[-1] for i in IMBALANCES] == [2, 4, 9, 22, 45, 450]


def test_profile_reproduces_published_dataset_sizes():
    # CIFAR-100-LT / CIFAR-10-LT training-set sizes from the full 500 / 5000 per class, as published
    # with LDAM-DRW (Cao et al. 2019) and used since: 10,847 (100-LT, 100), 19,573 (100-LT, 10),
    # 12,406 (10-LT, 100), 20,431 (10-LT, 10).
    assert sum(longtail_counts(500, 100, 100)) == 10847
    assert sum(longtail_counts(500, 100, 10)) == 19573
    assert sum(longtail_counts(5000, 10, 100)) == 12406
    assert sum(longtail_counts(5000, 10, 10)) == 20431


def test_profile_rejects_imbalance_below_one():
    with pytest.raises(ConfigError, match="imbalance"):
        longtail_counts(450, 100, 0.5)


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar100(root, train_per_class=60, test_per_class=2)
    return root


@pytest.mark.parametrize("imbalance", IMBALANCES)
def test_builder_counts_follow_formula(cifar_root, imbalance):
    d = build_dataset("cifar_lt", root=str(cifar_root), seed=0, imbalance=imbalance, val_per_class=10)
    # 60 per class, 10 held out: n_max = 50
    assert d.class_counts.tolist() == expected_counts(50, 100, imbalance)
    assert torch.bincount(d.val.y, minlength=100).tolist() == [10] * 100
    assert len(d.test) == 200 and d.num_classes == 100
    assert d.train.x.dtype == torch.uint8 and d.train.x.shape[1:] == (3, 32, 32)
    assert d.augment == "crop_flip" and len(d.mean) == 3
    assert d.class_names[7] == "class07"


def test_train_and_val_disjoint_seeded_and_faithful(cifar_root):
    (x_all, y_all), _, _ = load_cifar(str(cifar_root), 100, False)
    a = build_dataset("cifar_lt", root=str(cifar_root), seed=1, imbalance=10, val_per_class=10)
    b = build_dataset("cifar_lt", root=str(cifar_root), seed=1, imbalance=10, val_per_class=10)
    c = build_dataset("cifar_lt", root=str(cifar_root), seed=2, imbalance=10, val_per_class=10)
    tr, va = a.info["train_indices"]["train"], a.info["train_indices"]["val"]
    assert not set(tr) & set(va)
    assert torch.equal(a.train.x, x_all[tr]) and torch.equal(a.train.y, y_all[tr])
    assert torch.equal(a.val.y, y_all[va])
    assert a.info["train_indices"] == b.info["train_indices"]        # same seed, same split
    assert set(c.info["train_indices"]["val"]) != set(va)              # another seed, another draw


def test_authors_split_is_file_order(cifar_root):
    (_, y_all), _, _ = load_cifar(str(cifar_root), 100, False)
    d = build_dataset("cifar_lt", root=str(cifar_root), seed=0, imbalance=10, val_per_class=25, split="authors")
    idx = d.info["train_indices"]
    for cls in (0, 57, 99):
        in_file = torch.nonzero(y_all == cls).flatten().tolist()
        n_c = expected_counts(35, 100, 10)[cls]
        assert [i for i in idx["val"] if y_all[i] == cls] == in_file[-25:]      # the last 25 of the class
        assert [i for i in idx["train"] if y_all[i] == cls] == in_file[:n_c]    # the first n_c, unshuffled


def test_missing_files_and_bad_settings(tmp_path, cifar_root):
    with pytest.raises(DataError, match=r"cifar-100-python.*missing.*cs.toronto.edu"):
        build_dataset("cifar_lt", root=str(tmp_path), seed=0)
    with pytest.raises(ConfigError, match="dataset.split"):
        build_dataset("cifar_lt", root=str(cifar_root), seed=0, split="sorted", val_per_class=10)
    with pytest.raises(ConfigError, match="dataset.classes"):
        build_dataset("cifar_lt", root=str(cifar_root), seed=0, classes=1000)
    with pytest.raises(DataError, match="class 'class00' has 60"):
        build_dataset("cifar_lt", root=str(cifar_root), seed=0, val_per_class=60)


def test_pickle_that_would_run_code_is_refused(tmp_path):
    write_cifar100(tmp_path, 1, 1)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "cifar-100-python" / "train").write_bytes(pickle.dumps({"data": Evil()}))
    load_cifar.cache_clear()
    with pytest.raises(Exception, match="refusing to load builtins.print"):
        load_cifar(str(tmp_path), 100, False)


def test_cifar10_layout(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = np.tile(np.arange(10), 3)
        obj = {"data": rng.integers(0, 256, (30, 3072), dtype=np.uint8), "labels": labels.tolist()}
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    d = build_dataset("cifar_lt", root=str(tmp_path), seed=0, classes=10, imbalance=5, val_per_class=5)
    # 5 batches x 3 per class = 15, 5 held out: n_max = 10
    assert d.class_counts.tolist() == expected_counts(10, 10, 5)
    assert len(d.test) == 30 and d.class_names[3] == "c3"
