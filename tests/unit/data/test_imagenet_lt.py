"""ImageNet-LT from OLTR-style list files over real JPEGs; the many/medium/few-shot groups."""
from __future__ import annotations

import pytest
import torch

from cdb.data import build_dataset
from cdb.data.images import decode, read_list
from cdb.core.errors import DataError
from helpers.datasets import write_imagenet_lt, write_jpeg

# class sizes straddling the thresholds: many > 100, medium 20..100, few < 20
COUNTS = [101, 100, 20, 19, 1]


@pytest.fixture(scope="module")
def inet_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("inet")
    write_imagenet_lt(root, COUNTS, val_per_class=1, test_per_class=2, size=12)
    return root


def test_splits_groups_and_items(inet_root):
    d = build_dataset("imagenet_lt", root=str(inet_root), seed=0, image_size=8, resize=10)
    assert d.num_classes == 5 and d.class_counts.tolist() == COUNTS
    assert len(d.val) == 5 and len(d.test) == 10
    assert d.info["groups"] == {"many": [0], "medium": [1, 2], "few": [3, 4]}
    assert "many: > 100" in d.info["group_thresholds"] and "few: < 20" in d.info["group_thresholds"]
    assert d.class_names[2] == "n00000002"        # the WordNet-id folder of the class
    x, y = d.train[0]
    assert x.shape == (3, 8, 8) and x.dtype == torch.float32 and y == 0
    x, y = d.test[9]
    assert x.shape == (3, 8, 8) and y == 4
    assert isinstance(d.train.targets, torch.Tensor)


def test_eval_transform_is_deterministic_and_normalised(inet_root):
    d = build_dataset("imagenet_lt", root=str(inet_root), seed=0, image_size=8, resize=10)
    a, _ = d.val[3]
    b, _ = d.val[3]
    assert torch.equal(a, b)
    # the fixture's channel 2 is a constant 30 + 0 = 30 for class 3 image 0: (30/255 - 0.406) / 0.225
    assert torch.allclose(a[2], torch.full_like(a[2], (30 / 255 - 0.406) / 0.225), atol=0.05)


def test_missing_lists_and_images(tmp_path, inet_root):
    with pytest.raises(DataError, match=r"ImageNet_LT_train.txt is missing.*OLTR"):
        build_dataset("imagenet_lt", root=str(tmp_path), seed=0)
    with pytest.raises(DataError, match="image folder .* is missing"):
        build_dataset("imagenet_lt", root=str(inet_root), seed=0, images="elsewhere")
    with pytest.raises(DataError, match="image .*nope.JPEG is missing"):
        decode(tmp_path / "nope.JPEG")


def test_list_parsing(tmp_path):
    f = tmp_path / "l.txt"
    f.write_text("a/b.JPEG 3\n\nc/d.JPEG 0\n")
    assert read_list(f, "") == [("a/b.JPEG", 3), ("c/d.JPEG", 0)]
    f.write_text("a/b.JPEG three\n")
    with pytest.raises(DataError, match=r"l.txt:1: expected 'relative/path label'"):
        read_list(f, "")


def test_decode_grayscale_jpeg_as_rgb(tmp_path):
    from PIL import Image
    p = tmp_path / "g.jpg"
    Image.new("L", (6, 6), 77).save(p, format="JPEG")
    img = decode(p)
    assert img.shape == (3, 6, 6) and abs(int(img[1, 3, 3]) - 77) <= 2
    write_jpeg(tmp_path / "c.jpg", 5, 7, 9)
    assert decode(tmp_path / "c.jpg").shape == (3, 5, 7)
    Image.new("RGB", (4, 3), (1, 2, 3)).save(tmp_path / "png_named.JPEG", format="PNG")  # as in ImageNet
    assert decode(tmp_path / "png_named.JPEG")[:, 0, 0].tolist() == [1, 2, 3]
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot decode image"):
        decode(tmp_path / "broken.jpg")
