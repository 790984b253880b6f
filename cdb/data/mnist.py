"""Imbalanced MNIST 4-vs-9 (paper sec. 4.1, following Ren et al. 2018).

Train: 5000 images of digits 4 and 9 from the MNIST training split, with
round(5000 * r) nines (the majority) and the rest fours. Validation: 500 per
class from the training split, disjoint from train. Test: 800 per class from
the MNIST test split. The seed picks the images.
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch
from torchvision.datasets import MNIST

from cdb.core.errors import DataError, check, is_count, is_number
from cdb.data.base import DatasetSplits, TensorSplit

MINORITY, MAJORITY = 4, 9
RAW_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
NORMALIZE = ("standard", "unit")  # standardised with MNIST_MEAN/STD, or [0, 1]


def _missing(root: Path) -> list[Path]:
    raw = root / "MNIST" / "raw"
    return [raw / f for files in RAW_FILES.values() for f in files if not (raw / f).exists()]


@functools.lru_cache(maxsize=4)
def load_mnist(root: str, download: bool = False) -> dict[bool, tuple[torch.Tensor, torch.Tensor]]:
    """Both MNIST splits as uint8 images (N, 28, 28) and int64 labels, keyed by train=True/False.

    Reads `<root>/MNIST/raw/` in torchvision's layout; downloads through
    torchvision when files are missing and `download` is set.
    """
    path = Path(root).expanduser()
    if _missing(path) and download:
        try:
            for train in (True, False):
                MNIST(str(path), train=train, download=True)
        except Exception as exc:  # no network, proxy, disk full, ...
            raise DataError(
                f"MNIST is not in {path / 'MNIST' / 'raw'} and downloading it failed ({type(exc).__name__}: {exc}). "
                "Put the four files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                "t10k-labels-idx1-ubyte there, or set data_root / CDB_DATA_ROOT to a folder that has MNIST/raw/."
            ) from None
    missing = _missing(path)
    if missing:
        raise DataError(
            f"MNIST file {missing[0]} is missing. Put the four MNIST files (train-images-idx3-ubyte, "
            f"train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) in {path / 'MNIST' / 'raw'}, "
            "set data_root (or CDB_DATA_ROOT) to a folder that has MNIST/raw/, or pass dataset.download=true on a "
            "machine with internet."
        )
    out = {}
    for train in (True, False):
        images_file, labels_file = (path / "MNIST" / "raw" / f for f in RAW_FILES[train])
        images, labels = read_idx(images_file, IMAGES), read_idx(labels_file, LABELS)
        if len(images) != len(labels):
            raise DataError(f"MNIST files {images_file} ({len(images)} images) and {labels_file} ({len(labels)} "
                            "labels) do not match; replace them with a fresh copy of the pair")
        if len(labels) and int(labels.max()) > 9:
            raise DataError(f"MNIST file {labels_file} holds label {int(labels.max())} (digits are 0-9); "
                            "replace it with a fresh copy")
        out[train] = (images, labels.long())
    return out


IMAGES, LABELS = 0x00000803, 0x00000801  # idx magic numbers: unsigned bytes in 3 dims / 1 dim


def read_idx(path: Path, magic: int) -> torch.Tensor:
    """One MNIST idx file as a uint8 tensor, its header checked against what it must hold (28x28 images or
    labels) and against its length, so a damaged file fails in one line naming it instead of deep in torch."""
    what = "images" if magic == IMAGES else "labels"

    def damaged(why: str) -> DataError:
        return DataError(f"MNIST file {path} is damaged ({why}); replace it with a fresh copy of {path.name}")

    try:
        raw = path.read_bytes()
    except OSError as exc:  # a folder, or no permission, where the file should be
        raise DataError(f"MNIST file {path} cannot be read ({exc.strerror}); replace it with a fresh copy of "
                        f"{path.name}") from None
    ndim = 3 if magic == IMAGES else 1
    if len(raw) < 4 + 4 * ndim:
        raise damaged(f"{len(raw)} bytes, shorter than its header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise damaged(f"header 0x{found:08x}, expected 0x{magic:08x} for {what}")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if ndim == 3 and dims[1:] != [28, 28]:
        raise damaged(f"images of {dims[1]}x{dims[2]} pixels, expected 28x28")
    body = raw[4 + 4 * ndim:]
    size = dims[0] * (784 if ndim == 3 else 1)
    if len(body) != size:
        raise damaged(f"{len(body)} data bytes where its header announces {dims[0]} {what} ({size} bytes)")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).view(*dims).clone()


def split_counts(majority_ratio: float, n_train: int = 5000) -> tuple[int, int]:
    """(minority, majority) training counts: round(n_train * r) nines, the rest fours."""
    n_major = int(round(n_train * majority_ratio))
    return n_train - n_major, n_major


def build_mnist_imbalanced(
    root: str,
    majority_ratio: float = 0.99,
    seed: int = 0,
    n_train: int = 5000,
    val_per_class: int = 500,
    test_per_class: int = 800,
    download: bool = False,
    normalize: str = "unit",
) -> DatasetSplits:
    """normalize: "standard" (MNIST's mean/std, the usual PyTorch convention) or "unit" (pixels in [0, 1], no
    mean subtraction, as Ren et al.'s code feeds its network)."""
    n_minor, n_major = _checked_counts(normalize, majority_ratio, n_train, val_per_class, test_per_class)
    data = load_mnist(str(root), download)
    parts = _draw(data, seed, n_minor, n_major, majority_ratio, n_train, val_per_class, test_per_class)
    splits = DatasetSplits(
        name="mnist_imbalanced",
        train=_split_of(data, parts, 0, True),
        val=_split_of(data, parts, 1, True),
        test=_split_of(data, parts, 2, False),
        num_classes=2,
        class_names=[str(MINORITY), str(MAJORITY)],
        input_shape=(1, 28, 28),
        mean=MNIST_MEAN if normalize == "standard" else (0.0,),
        std=MNIST_STD if normalize == "standard" else (1.0,),
        augment="none",
        info={"majority_ratio": majority_ratio, "source_indices_seed": int(seed), "normalize": normalize},
    )
    splits.info["train_indices"] = {  # MNIST-train indices, so a split can be audited for disjointness
        "train": torch.cat([parts[0][0], parts[1][0]]).tolist(),
        "val": torch.cat([parts[0][1], parts[1][1]]).tolist(),
    }
    return splits


def _checked_counts(normalize: str, majority_ratio, n_train, val_per_class, test_per_class) -> tuple[int, int]:
    """(minority, majority) training counts (split_counts), once every setting is checked: refused in one line
    when a value is not allowed or leaves the minority class no training image."""
    check(normalize in NORMALIZE, "dataset.normalize", normalize, " or ".join(NORMALIZE))
    check(is_number(majority_ratio) and 0.5 <= majority_ratio < 1.0, "dataset.majority_ratio", majority_ratio,
          "a number in [0.5, 1)")
    check(is_count(n_train) and n_train > 0, "dataset.n_train", n_train, "a positive number of training images")
    check(is_count(val_per_class) and is_count(test_per_class) and val_per_class > 0 and test_per_class > 0,
          "dataset.val_per_class/test_per_class", (val_per_class, test_per_class), "positive integers")
    n_minor, n_major = split_counts(majority_ratio, n_train)
    check(n_minor >= 1, "dataset.n_train", n_train,
          f"a size that leaves the minority class (digit {MINORITY}) at least one training image at majority_ratio "
          f"{majority_ratio} (round(n_train * r) go to the majority: {n_major} of {n_train} here)")
    return n_minor, n_major


def _draw(data: dict, seed: int, n_minor: int, n_major: int, majority_ratio, n_train: int, val_per_class: int,
          test_per_class: int) -> dict[int, tuple[torch.Tensor, ...]]:
    """{label: (train, val, test) MNIST indices} of each digit, drawn with the seed: train and val disjoint from
    MNIST's training split, test from its test split; refused in one line when a split has too few images."""
    g = torch.Generator().manual_seed(int(seed))

    def pick(train: bool, digit: int, sizes: list[int]) -> list[torch.Tensor]:
        x, y = data[train]
        idx = torch.nonzero(y == digit).flatten()
        if sum(sizes) > len(idx):
            asked = (f"dataset.n_train={n_train} (at majority_ratio {majority_ratio}: {sizes[0]} of digit {digit}) "
                     f"plus dataset.val_per_class={val_per_class}" if train else f"dataset.test_per_class={test_per_class}")
            raise DataError(f"{asked} ask for {sum(sizes)} images of digit {digit}, but MNIST's "
                            f"{'training' if train else 'test'} split has {len(idx)}: lower "
                            f"{'dataset.n_train or dataset.val_per_class' if train else 'dataset.test_per_class'}")
        idx = idx[torch.randperm(len(idx), generator=g)]
        return list(torch.split(idx[: sum(sizes)], sizes))

    parts = {}
    for label, digit, n in ((0, MINORITY, n_minor), (1, MAJORITY, n_major)):
        tr, va = pick(True, digit, [n, val_per_class])
        (te,) = pick(False, digit, [test_per_class])
        parts[label] = (tr, va, te)
    return parts


def _split_of(data: dict, parts: dict, which: int, train: bool) -> TensorSplit:
    """Split `which` (0 train, 1 val, 2 test) of both digits as a TensorSplit: uint8 images (N, 1, 28, 28), labels
    0 for the minority digit and 1 for the majority."""
    x_all, _ = data[train]
    idx = torch.cat([parts[0][which], parts[1][which]])
    y = torch.cat([torch.zeros(len(parts[0][which]), dtype=torch.long),
                   torch.ones(len(parts[1][which]), dtype=torch.long)])
    return TensorSplit(x_all[idx].unsqueeze(1).contiguous(), y)
