"""Shared split helpers for long-tailed datasets: the exponential profile and per-class carving."""
from __future__ import annotations

import math

import torch

from cdb.core.errors import DataError, check, is_number


def longtail_counts(n_max: int, num_classes: int, imbalance: float) -> list[int]:
    """Images kept per class: n_c = floor(n_max * mu**c), mu = (1/imbalance)**(1/(C-1)), c = 0..C-1.

    The exponential profile of Cui et al. 2019 (paper sec. 4.1), written as
    n_max * (1/imbalance)**(c/(C-1)) like their code and LDAM-DRW's, so the
    counts match the published long-tailed CIFAR sizes. imbalance = 1 keeps
    n_max for every class.
    """
    check(is_number(imbalance) and imbalance >= 1, "imbalance", imbalance, "a number >= 1 (largest / smallest class size; 1 = balanced)")
    check(num_classes >= 1 and n_max >= 1, "n_max/num_classes", (n_max, num_classes), "positive integers")
    if num_classes == 1 or imbalance == 1:
        return [int(n_max)] * num_classes
    return [int(n_max * (1.0 / imbalance) ** (c / (num_classes - 1))) for c in range(num_classes)]


def class_indices(targets: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
    """Indices of each class's samples, in file order."""
    return [torch.nonzero(targets == c).flatten() for c in range(num_classes)]


def carve_per_class(targets: torch.Tensor, num_classes: int, val_per_class: int, seed: int,
                    order: str = "random", names: list[str] | None = None) -> tuple[list, list]:
    """Split each class's indices into (rest, val) with `val_per_class` in val.

    order="random": each class's indices are shuffled with `seed` first, so
    val is a random, seeded draw and `rest` is in random order (the paper's
    "randomly selecting 50 images per class").
    order="file": val is the last `val_per_class` of the class in file order
    and `rest` keeps file order (the authors' CIFAR code).
    Returns two lists of per-class index tensors.
    """
    check(order in ("random", "file"), "dataset.split", order, "random (paper) or file (authors' code)")
    g = torch.Generator().manual_seed(int(seed))
    rest, val = [], []
    for c, idx in enumerate(class_indices(targets, num_classes)):
        if len(idx) <= val_per_class:
            name = names[c] if names else str(c)
            raise DataError(f"class {name!r} has {len(idx)} training images; {val_per_class} go to validation "
                            "and at least one must remain for training (lower dataset.val_per_class)")
        if order == "random":
            idx = idx[torch.randperm(len(idx), generator=g)]
        cut = len(idx) - val_per_class
        rest.append(idx[:cut] if order == "file" else idx[val_per_class:])
        val.append(idx[cut:] if order == "file" else idx[:val_per_class])
    return rest, val


def take_first(per_class: list[torch.Tensor], counts: list[int], names: list[str] | None = None) -> torch.Tensor:
    """Concatenate the first counts[c] indices of every class (class order), checking there are enough."""
    out = []
    for c, (idx, n) in enumerate(zip(per_class, counts)):
        if n > len(idx):
            name = names[c] if names else str(c)
            raise DataError(f"class {name!r} has {len(idx)} images but the imbalance profile needs {n}")
        out.append(idx[:n])
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def fit_longtail(available: list[int], imbalance: float) -> list[int]:
    """The exponential profile with the largest n_max that `available` (images per class, head first) allows.

    Class at rank r keeps floor(n_max * mu**r) <= available[r]; n_max is at most the head's count. A class
    that would keep no image is an error (the head needs at least `imbalance` images).
    """
    c = len(available)
    if c == 1 or imbalance == 1:
        return [min(available)] * c
    # floor(n * mu**r) <= a  <=>  n < (a + 1) / mu**r: start just above that bound, step down to the exact one
    n = min([available[0]] + [math.ceil((a + 1) * imbalance ** (r / (c - 1))) for r, a in enumerate(available)])
    while n > 0 and any(k > a for k, a in zip(longtail_counts(n, c, imbalance), available)):
        n -= 1
    counts = longtail_counts(n, c, imbalance) if n > 0 else [0] * c
    if min(counts) < 1:
        raise DataError(f"imbalance={imbalance:g} leaves the last class without images: the head class needs at "
                        f"least {math.ceil(imbalance)} training images and has {available[0]} (lower the "
                        "imbalance, or add images)")
    return counts


def fit_majority(head: int, tail: int, majority_ratio: float, n_train: int | None = None) -> tuple[int, int]:
    """(head, tail) counts of a two-class split like MNIST 4/9: round(N * r) head images, the other N - that tail.

    N is `n_train`, or else the largest N that the available `head` and `tail` images allow.
    """
    def split(n: int) -> tuple[int, int]:
        h = int(round(n * majority_ratio))
        return h, n - h

    if n_train is None:
        n_train = math.floor(min(head / majority_ratio, tail / (1 - majority_ratio))) + 2
        while n_train > 0 and (split(n_train)[0] > head or split(n_train)[1] > tail):
            n_train -= 1
    h, t = split(n_train)
    if h > head or t > tail or min(h, t) < 1:
        raise DataError(f"majority_ratio={majority_ratio:g} with {n_train} training images needs {h} head and "
                        f"{t} tail images (at least 1 each); there are {head} and {tail} after validation "
                        "(lower dataset.majority_ratio or dataset.n_train, or pick the head with dataset.class_order)")
    return h, t
