"""Data that decoded wrong or broke with a traceback: 16-bit images keep their contrast (scaled by their bit depth,
not clipped at 255), an image too large to decode safely and a crop size no machine can hold are one line, MNIST
files that are folders are one line, and a split that asks for more MNIST digits than exist names its setting."""
from __future__ import annotations

import numpy as np
import pytest

from cdb.core.errors import CdbError, DataError


def test_a_16_bit_image_is_scaled_by_its_bit_depth_not_clipped(tmp_path):
    from PIL import Image

    from cdb.data.images import decode

    values = np.array([[0, 257, 4095], [16384, 32768, 65535]], dtype=np.uint16)  # a 12-bit scan uses 0-4095
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as img:
        assert img.mode.startswith("I")  # Pillow opens it as 16-bit grayscale
    got = decode(tmp_path / "deep.png", channels=1)[0]
    expected = np.round(values.astype(np.float64) * 255 / 65535).astype(np.uint8)  # by hand: the depth's ratio
    assert got.tolist() == expected.tolist()   # before: [[0, 255, 255], [255, 255, 255]]


def test_an_image_too_large_to_decode_safely_is_one_line(tmp_path, monkeypatch):
    from PIL import Image

    from cdb.data.images import decode

    Image.new("L", (64, 64)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels > 2 x 1000: what a 14000 x 14000 file is
    with pytest.raises(DataError) as exc:
        decode(tmp_path / "bomb.png", channels=1)
    assert str(exc.value).startswith(f"image {tmp_path / 'bomb.png'} is too large to decode safely")


@pytest.mark.parametrize("size", [20000, 4097])
def test_a_crop_size_no_machine_can_hold_is_refused(tmp_path, size):
    from cdb.data.images import image_transform, load_images

    with pytest.raises(CdbError, match=f"dataset.image_size={size} is not allowed: a size in pixels from 1 to 4096"):
        load_images([tmp_path / "a.png"] * 60, 1, size)
    with pytest.raises(CdbError, match=f"dataset.image_size={size} is not allowed"):
        image_transform(False, size, size)


def test_an_mnist_file_that_is_a_folder_is_one_line(tmp_path):
    from cdb.data.mnist import RAW_FILES, load_mnist

    raw = tmp_path / "MNIST" / "raw"
    for files in RAW_FILES.values():
        for f in files:
            (raw / f).mkdir(parents=True)
    load_mnist.cache_clear()
    with pytest.raises(DataError, match=r"MNIST file .*-idx\d-ubyte cannot be read \(Is a directory\); replace it"):
        load_mnist(str(tmp_path))


@pytest.mark.parametrize("settings, needle", [
    ({"n_train": 999999999}, "dataset.n_train=999999999 (at majority_ratio 0.99: 10000000 of digit 4) plus "
                             "dataset.val_per_class=500 ask for 10000500 images of digit 4, but MNIST's training "
                             "split has 5842: lower dataset.n_train or dataset.val_per_class"),
    ({"val_per_class": 100000}, "plus dataset.val_per_class=100000 ask for 100050 images of digit 4"),
    ({"test_per_class": 5000}, "dataset.test_per_class=5000 ask for 5000 images of digit 4, but MNIST's test split "
                               "has 982: lower dataset.test_per_class"),
])
def test_more_digits_than_mnist_has_names_the_setting(mnist_dir, settings, needle):
    from cdb.data.mnist import build_mnist_imbalanced

    with pytest.raises(DataError) as exc:
        build_mnist_imbalanced(str(mnist_dir), **settings)
    assert needle in str(exc.value), str(exc.value)
