"""Imbalanced MNIST 4/9 splits: sizes from the protocol (docs/protocol.md), disjointness, seeding, clear data errors,
and the input scaling option."""
import pytest
import torch

from cdb.data import build_dataset
from cdb.data.mnist import build_mnist_imbalanced, split_counts
from cdb.core.errors import CdbError, ConfigError, DataError
from helpers import compose

# docs/protocol.md: round(5000 r) nines, the rest fours (r = 0.995: 4975 / 25)
EXPECTED = {0.9: (500, 4500), 0.95: (250, 4750), 0.98: (100, 4900), 0.99: (50, 4950), 0.995: (25, 4975)}


@pytest.mark.parametrize("ratio", sorted(EXPECTED))
def test_split_sizes_and_disjointness(mnist_dir, ratio):
    d = build_dataset("mnist_imbalanced", root=str(mnist_dir), seed=3, majority_ratio=ratio)
    assert split_counts(ratio) == EXPECTED[ratio]
    assert d.class_counts.tolist() == list(EXPECTED[ratio])
    assert torch.bincount(d.val.y, minlength=2).tolist() == [500, 500]
    assert torch.bincount(d.test.y, minlength=2).tolist() == [800, 800]
    assert d.train.x.shape == (5000, 1, 28, 28) and d.train.x.dtype == torch.uint8
    tr, va = set(d.info["train_indices"]["train"]), set(d.info["train_indices"]["val"])
    assert len(tr) == 5000 and len(va) == 1000 and not (tr & va)
    # labels really are the digits: label 0 <-> digit 4, label 1 <-> digit 9
    from cdb.data.mnist import load_mnist

    digits = load_mnist(str(mnist_dir))[True][1]
    idx = torch.tensor(d.info["train_indices"]["train"])
    assert torch.equal(digits[idx], torch.where(d.train.y == 0, 4, 9))


def test_test_images_come_from_the_test_split(mnist_dir):
    from cdb.data.mnist import load_mnist

    d = build_dataset("mnist_imbalanced", root=str(mnist_dir), seed=0, majority_ratio=0.9)
    test_x = load_mnist(str(mnist_dir))[False][0]
    first = d.test.x[0, 0]
    assert any(torch.equal(first, t) for t in test_x[:10000])


def test_seed_picks_the_split_and_is_deterministic(mnist_dir):
    a = build_dataset("mnist_imbalanced", root=str(mnist_dir), seed=1, majority_ratio=0.99)
    b = build_dataset("mnist_imbalanced", root=str(mnist_dir), seed=1, majority_ratio=0.99)
    c = build_dataset("mnist_imbalanced", root=str(mnist_dir), seed=2, majority_ratio=0.99)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.x, b.test.x)
    assert not torch.equal(a.train.x, c.train.x)


@pytest.mark.parametrize("ratio", [0.4, 1.0, 1.2, -0.1])
def test_ratio_outside_range_is_a_config_error(mnist_dir, ratio):
    with pytest.raises(ConfigError, match=r"dataset.majority_ratio.*\[0.5, 1\)"):
        build_dataset("mnist_imbalanced", root=str(mnist_dir), seed=0, majority_ratio=ratio)


def test_missing_data_says_where_to_put_the_files(tmp_path):
    with pytest.raises(DataError, match=r"MNIST/raw"):
        build_dataset("mnist_imbalanced", root=str(tmp_path), seed=0, majority_ratio=0.9)


def test_failed_download_is_a_data_error(tmp_path, monkeypatch):
    import torchvision.datasets

    def no_network(*a, **k):
        raise OSError("no route to host")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_network)
    with pytest.raises(DataError, match="downloading it failed"):
        build_dataset("mnist_imbalanced", root=str(tmp_path / "fresh"), seed=0, majority_ratio=0.9, download=True)


def test_unknown_dataset_name():
    with pytest.raises(ConfigError, match="dataset.name"):
        build_dataset("mnist_balanced", root=".", seed=0)


def test_normalize_unit_feeds_pixels_in_zero_one(mnist_dir):
    std = build_mnist_imbalanced(str(mnist_dir), n_train=100, val_per_class=5, test_per_class=5,
                                 normalize="standard")
    unit = build_mnist_imbalanced(str(mnist_dir), n_train=100, val_per_class=5, test_per_class=5)  # the YAML's default
    assert (std.mean, std.std) == ((0.1307,), (0.3081,)) and (unit.mean, unit.std) == ((0.0,), (1.0,))
    assert torch.equal(std.train.x, unit.train.x) and unit.info["normalize"] == "unit"
    with pytest.raises(CdbError, match="dataset.normalize"):
        build_mnist_imbalanced(str(mnist_dir), normalize="minmax")
    assert compose([]).dataset.normalize == "unit"   # protocol P3, the MNIST default (docs/protocol.md)
    assert compose(["protocol=p1"]).dataset.normalize == "standard"
