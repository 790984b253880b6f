"""Folders of real MNIST digits (PNG files written from the idx files) for the own-data tests: the `digits`
fixture of tests/conftest.py writes them, tests/unit/data/test_own_data_folders.py builds datasets from them
and tests/cli/test_own_data_runs.py trains on them.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image


RAW = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TWO = {"4": 40, "9": 600}                                 # training PNGs per class; 20 test PNGs each
TEN = {str(d): (130 if d == 3 else 70) for d in range(10)}  # digit 3 is the largest class, not the first folder
VAL = 10                                                  # dataset.val_per_class in these tests
STEPS = ["trainer.unit=step", "trainer.length=2", "trainer.eval_every=1", "trainer.progress=false", "threads=1",
         "trainer.device=cpu"]


def read_idx(path: Path) -> np.ndarray:
    """An idx file (MNIST's format): magic (2 zero bytes, type 0x08 = uint8, ndim), ndim big-endian sizes, data."""
    raw = path.read_bytes()
    assert raw[:3] == b"\x00\x00\x08", path
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4: 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_digits(root: Path, images: dict, per_class: dict[str, int], test_per_class: int = 20) -> Path:
    """root/{train,test}/<digit>/<index>.png, grayscale 28x28, the first images of each digit in file order."""
    for split, n_of in (("train", per_class), ("test", {d: test_per_class for d in per_class})):
        x, y = images[split]
        for d, n in n_of.items():
            (root / split / d).mkdir(parents=True, exist_ok=True)
            for i in np.nonzero(y == int(d))[0][:n]:
                Image.fromarray(x[i], mode="L").save(root / split / d / f"{i:05d}.png")
    return root
