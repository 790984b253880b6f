"""Your own data through dataset=folder: folders of real MNIST digits (PNG files written from the idx files, the
`digits` fixture) at 99:1 for two classes and at imbalance 100 for ten; counts checked against the profile
computed here by hand, the head class, channels and thresholds. (The same folders through cdb-run:
tests/cli/test_own_data_runs.py.)"""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from cdb.data import build_dataset
from cdb.core.errors import ConfigError, DataError
from helpers.digits import VAL


def build(root: Path, name: str, **kw):
    return build_dataset("folder", root=str(root), seed=0, path=name, val_per_class=VAL, **kw)


def groups_by_name(d) -> dict[str, set[str]]:
    return {k: {d.class_names[c] for c in v} for k, v in d.info["groups"].items() if k != "thresholds"}


# ---- expected values, computed here from the protocol's rules ------------------------------------------
def majority_split(head: int, tail: int, r: float) -> tuple[int, int]:
    """MNIST 4/9's rule: N images, round(N r) of the head class; the largest N the folder allows."""
    best = None
    for n in range(1, head + tail + 1):
        h = int(round(n * r))
        if h <= head and n - h <= tail and n - h >= 1:
            best = (h, n - h)
    return best


def longtail_by_rank(available: list[int], imbalance: float) -> list[int]:
    """floor(n_max * mu**r), mu = (1/imbalance)**(1/(C-1)), with the largest n_max every class can supply."""
    c = len(available)
    for n_max in range(available[0], 0, -1):
        counts = [math.floor(n_max * (1 / imbalance) ** (r / (c - 1))) for r in range(c)]
        if all(k <= a for k, a in zip(counts, available)):
            return counts
    raise AssertionError("no profile fits")


def test_two_classes_at_99_to_1_like_mnist(digits):
    d = build(digits, "two", majority_ratio=0.99)
    # after 10 validation images each: 30 fours, 590 nines. Nines are the largest class, so the head, although
    # "4" is the first folder. N = 596 is the largest N with round(0.99 N) <= 590: 590 nines and 6 fours.
    assert majority_split(590, 30, 0.99) == (590, 6)
    assert d.class_names == ["4", "9"] and d.info["head"] == "9"
    assert d.class_counts.tolist() == [6, 590]
    assert d.input_shape == (1, 28, 28) and d.train.x.shape[1:] == (1, 28, 28)        # grayscale stays 1 channel
    assert d.info["augment"] == "none" and d.augment == "none"                         # no flips of digits
    # mean/std measured on the kept training images
    x = d.train.x.double() / 255
    assert d.mean[0] == pytest.approx(float(x.mean())) and d.std[0] == pytest.approx(float(x.std()), rel=1e-6)
    # terciles of (6, 590): 1/3 quantile 6 + 584/3 = 200.7, 2/3 quantile 395.3 -> one many- and one few-shot class
    assert d.info["groups"]["thresholds"]["few_below"] == 201 and d.info["groups"]["thresholds"]["many_above"] == 395
    assert groups_by_name(d) == {"many": {"9"}, "medium": set(), "few": {"4"}}


def test_head_class_order_and_errors(digits):
    # fours first: 30 available cannot give 99 % of a split with at least one nine
    with pytest.raises(DataError, match="majority_ratio=0.99"):
        build(digits, "two", majority_ratio=0.99, class_order=["4", "9"])
    d = build(digits, "two", majority_ratio=0.6, class_order=["4", "9"])
    assert majority_split(30, 590, 0.6) == (30, 20)                                  # N = 50
    assert d.info["head"] == "4" and d.class_counts.tolist() == [30, 20]
    with pytest.raises(ConfigError, match="dataset.class_order"):
        build(digits, "two", imbalance=10, class_order=["4", "7"])
    with pytest.raises(ConfigError, match="only for two classes"):
        build(digits, "ten", majority_ratio=0.99)
    with pytest.raises(ConfigError, match="dataset.channels"):
        build(digits, "two", channels=2)
    assert build(digits, "two", channels=3).input_shape == (3, 28, 28)


def test_ten_classes_at_imbalance_100(digits):
    d = build(digits, "ten", imbalance=100, image_size=32)
    # available after validation: digit 3 120, the others 60. Head first by size: 3, then 0, 1, 2, 4, ... 9
    ranked = longtail_by_rank([120] + [60] * 9, 100)
    assert ranked == [101, 60, 36, 21, 13, 7, 4, 2, 1, 1]                               # n_max = 101
    order = ["3", "0", "1", "2", "4", "5", "6", "7", "8", "9"]
    assert d.info["head"] == "3" and d.info["class_order"] == order
    assert dict(zip(d.class_names, d.class_counts.tolist())) == dict(zip(order, ranked))
    assert d.input_shape == (1, 32, 32) and d.train.x.shape[1:] == (1, 32, 32)       # resized from 28
    assert d.info["augment"] == "none"                                    # grayscale up to 32 px: as MNIST
    rgb = build(digits, "ten", imbalance=100, image_size=32, channels=3)
    assert rgb.input_shape == (3, 32, 32) and rgb.info["augment"] == "cifar" and rgb.augment == "crop_flip"
    # sorted counts 1 1 2 4 7 13 21 36 60 101: 1/3 quantile 4, 2/3 quantile 21
    assert (d.info["groups"]["thresholds"]["few_below"], d.info["groups"]["thresholds"]["many_above"]) == (4, 21)
    assert groups_by_name(d) == {"many": {"3", "0", "1"}, "medium": {"2", "4", "5", "6"}, "few": {"7", "8", "9"}}
    given = build(digits, "ten", imbalance=100, many_above=50, few_below=5)
    assert groups_by_name(given) == {"many": {"3", "0"}, "medium": {"1", "2", "4", "5"}, "few": {"6", "7", "8", "9"}}
