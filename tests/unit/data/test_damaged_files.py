"""Damaged or hostile data files are one-line DataErrors naming the file, and unpickling them runs no code: CIFAR
python pickles (truncated, hostile) and MNIST idx files whose headers, sizes or labels lie
(docs/reliability.md lists every fault and its one line)."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from cdb.core.errors import DataError
from helpers.faults import Hostile


def _cifar_dir(tmp_path: Path, train: bytes) -> Path:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(train)
    ok = pickle.dumps({"data": [[0] * 3072], "fine_labels": [0]})
    (folder / "test").write_bytes(ok)
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [str(i) for i in range(100)]}))
    return tmp_path


@pytest.mark.parametrize("kind", ["truncated", "hostile"])
def test_damaged_cifar_pickle_is_one_line_and_runs_no_code(tmp_path, kind):
    from cdb.data.cifar import load_cifar

    marker = tmp_path / "pwned"
    good = pickle.dumps({"data": [[0] * 3072] * 4, "fine_labels": [0, 1, 2, 3]})
    payload = good[: len(good) // 2] if kind == "truncated" else pickle.dumps({"data": Hostile(f"touch {marker}")})
    root = _cifar_dir(tmp_path, payload)
    load_cifar.cache_clear()
    with pytest.raises(DataError) as exc:
        load_cifar(str(root), 100)
    msg = str(exc.value)
    assert str(root / "cifar-100-python" / "train") in msg and len(msg.splitlines()) == 1
    assert not marker.exists()


def idx_bytes(magic: int, dims: list[int], body: bytes) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + body


def mnist_dir(tmp_path: Path, labels=(4, 9, 4), n_images=3, images: bytes | None = None,
              image_magic=0x803) -> Path:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    img = images if images is not None else idx_bytes(image_magic, [n_images, 28, 28], bytes(784 * n_images))
    lab = idx_bytes(0x801, [len(labels)], bytes(labels))
    for pre in ("train", "t10k"):
        (raw / f"{pre}-images-idx3-ubyte").write_bytes(img)
        (raw / f"{pre}-labels-idx1-ubyte").write_bytes(lab)
    return tmp_path


@pytest.mark.parametrize("make, needle", [
    (lambda t: mnist_dir(t), None),
    (lambda t: mnist_dir(t, labels=(4, 9, 12)), "holds label 12 (digits are 0-9)"),
    (lambda t: mnist_dir(t, labels=(4, 9)), "(3 images) and"),
    (lambda t: mnist_dir(t, image_magic=0x03080000), "header 0x03080000, expected 0x00000803"),
    (lambda t: mnist_dir(t, images=idx_bytes(0x803, [3, 28, 28], bytes(1000))), "1000 data bytes where"),
    (lambda t: mnist_dir(t, images=b"\x00\x00"), "shorter than its header"),
])
def test_mnist_idx_files_are_validated(tmp_path, make, needle):
    from cdb.data.mnist import load_mnist

    root = make(tmp_path)
    load_mnist.cache_clear()
    if needle is None:
        (x, y) = load_mnist(str(root))[True]
        assert x.shape == (3, 28, 28) and y.tolist() == [4, 9, 4] and y.dtype == torch.int64
        return
    with pytest.raises(DataError) as exc:
        load_mnist(str(root))
    assert needle in str(exc.value) and "MNIST" in str(exc.value) and len(str(exc.value).splitlines()) == 1
