"""Bring-your-own-data builder: image folders and list files, carved validation, optional long tail."""
from __future__ import annotations

import pytest
import torch

from cdb.data import build_dataset
from cdb.core.errors import ConfigError, DataError
from helpers.datasets import write_image_folder, write_jpeg

PER_CLASS = {"cat": 12, "dog": 9, "eel": 7}


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    write_image_folder(root / "pets", PER_CLASS, test_per_class=2, size=12)
    return root


def build(root, **kw):
    kw = {"path": "pets", "image_size": 8, "resize": 10, "val_per_class": 2, **kw}
    return build_dataset("folder", root=str(root), seed=0, **kw)


def test_image_folder_with_carved_validation(folder_root):
    d = build(folder_root)
    assert d.class_names == ["cat", "dog", "eel"]
    assert d.class_counts.tolist() == [10, 7, 5]                  # 2 per class carved for validation
    assert torch.bincount(d.val.targets, minlength=3).tolist() == [2, 2, 2]
    assert len(d.test) == 6
    files = d.info["files"]
    assert not set(files["train"]) & set(files["val"])
    # terciles of (10, 7, 5): 1/3 quantile 6.33, 2/3 quantile 7.67 -> many > 7, few < 7
    assert {k: v for k, v in d.info["groups"].items() if k != "thresholds"} == \
        {"many": [0], "medium": [1], "few": [2]}
    # 12x12 RGB JPEGs cropped to 8: small, so held in memory as uint8 with crop+flip batched augmentation
    assert d.val.x.shape == (6, 3, 8, 8) and d.val.x.dtype == torch.uint8 and d.augment == "crop_flip"
    assert build(folder_root).info["files"]["val"] == files["val"]            # seeded
    other = build_dataset("folder", root=str(folder_root), seed=5, path="pets", val_per_class=2)
    assert other.info["files"]["val"] != files["val"]


def test_large_or_imagenet_augmented_images_are_read_from_disk(folder_root):
    d = build(folder_root, augment="imagenet", mean=[0.5] * 3, std=[0.25] * 3)
    x, y = d.val[0]
    assert x.shape == (3, 8, 8) and x.dtype == torch.float32 and y == 0
    assert d.train.paths == d.info["files"]["train"]
    assert d.info["transforms"]["train"].startswith("random resized crop 8")


def test_imbalance_profile_starts_from_the_largest_class(folder_root):
    d = build(folder_root, imbalance=5)
    # after carving: cat 10, dog 7, eel 5 (head first by size); n_c = floor(n_max * (1/5)^(r/2)), n_max as large
    # as the classes allow: rank 1 needs floor(n_max / sqrt 5) <= 7 and rank 2 floor(n_max / 5) <= 5, so n_max = 10
    assert d.class_counts.tolist() == [10, int(10 / 5 ** 0.5), 10 // 5] == [10, 4, 2]
    assert d.info["head"] == "cat"


def test_val_folder_and_list_layout(tmp_path):
    root = write_image_folder(tmp_path / "d", {"a": 3, "b": 4}, size=8)
    for name in ("a", "b"):
        write_jpeg(root / "val" / name / "v.jpg", 8, 8, 1)
    d = build_dataset("folder", root=str(tmp_path), seed=0, path="d", image_size=8, resize=8)
    assert d.class_counts.tolist() == [3, 4] and len(d.val) == 2      # val/ used as is, nothing carved
    (root / "train.txt").write_text("train/a/0.jpg 0\ntrain/a/1.jpg 0\ntrain/b/0.jpg 1\ntrain/b/1.jpg 1\n")
    (root / "test.txt").write_text("test/a/0.jpg 0\ntest/b/0.jpg 1\n")
    d = build_dataset("folder", root=str(tmp_path), seed=0, path=str(root), layout="lists", train_list="train.txt",
                      test_list="test.txt", val_per_class=1, image_size=8, resize=8)
    assert d.class_counts.tolist() == [1, 1] and len(d.val) == 2 and d.class_names == ["0", "1"]
    (root / "test.txt").write_text("test/a/0.jpg 5\n")
    with pytest.raises(DataError, match="test split has label 5"):
        build_dataset("folder", root=str(tmp_path), seed=0, path=str(root), layout="lists",
                      train_list="train.txt", test_list="test.txt", val_per_class=1)


def test_errors_name_what_is_missing(tmp_path, folder_root):
    with pytest.raises(ConfigError, match="dataset.path"):
        build_dataset("folder", root=str(tmp_path), seed=0)
    with pytest.raises(DataError, match="dataset folder .*nothing is missing"):
        build_dataset("folder", root=str(tmp_path), seed=0, path="nothing")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no class sub-folders"):
        build_dataset("folder", root=str(tmp_path), seed=0, path="empty")
    with pytest.raises(DataError, match="class 'eel' has 7 training images"):
        build(folder_root, val_per_class=7)
    with pytest.raises(ConfigError, match="dataset.layout"):
        build(folder_root, layout="csv")
