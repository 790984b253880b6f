"""The rough edges a new user hit with dataset=folder, by hand on tiny PNG folders: one class,
an empty class folder, a tie for the largest class, a few colour images among grayscale ones, a dataset setting
the builder does not take, and many/medium/few thresholds that are not numbers."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from cdb.core.errors import ConfigError, DataError
from cdb.data import build_dataset


def write(root: Path, layout: dict[str, dict[str, list[str]]]) -> Path:
    """root/<split>/<class>/<i>.png, one 8x8 image per listed Pillow mode ("L" grayscale, "RGB" colour); a class
    with an empty list is an empty folder."""
    for split, classes in layout.items():
        for name, modes in classes.items():
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i, mode in enumerate(modes):
                value = (40 * i) % 256 if mode == "L" else ((40 * i) % 256, 30, 200)
                Image.new(mode, (8, 8), value).save(root / split / name / f"{i}.png")
    return root


def build(root: Path, **kw):
    return build_dataset("folder", root=str(root), seed=0, path=".", val_per_class=1, **kw)


GRAY = ["L"] * 5


def test_a_single_class_is_refused(tmp_path):
    root = write(tmp_path, {"train": {"4": GRAY}, "test": {"4": GRAY[:2]}})
    with pytest.raises(DataError) as e:
        build(root)
    assert str(e.value) == (f"{root / 'train'} has one class (4): a classifier needs at least two; add a "
                            "sub-folder of images per class")


def test_a_single_label_in_list_files_is_refused(tmp_path):
    write(tmp_path, {"train": {"4": GRAY}, "test": {"4": GRAY[:2]}})
    (tmp_path / "train.txt").write_text("".join(f"train/4/{i}.png 0\n" for i in range(5)))
    (tmp_path / "test.txt").write_text("test/4/0.png 0\n")
    with pytest.raises(DataError, match="train.txt has one class .0.: a classifier needs at least two"):
        build(tmp_path, layout="lists", train_list="train.txt", test_list="test.txt")


@pytest.mark.parametrize("split", ["train", "test"])
def test_an_empty_class_folder_is_named(tmp_path, split):
    layout = {"train": {"4": GRAY, "9": GRAY}, "test": {"4": GRAY[:2], "9": GRAY[:2]}}
    layout[split]["9"] = []
    root = write(tmp_path, layout)
    with pytest.raises(DataError) as e:
        build(root)
    assert str(e.value).startswith(f"class folder {root / split / '9'} is empty: no image (")
    assert "go to validation" not in str(e.value)


def test_a_tie_for_the_largest_class_says_so(tmp_path):
    root = write(tmp_path, {"train": {"4": GRAY, "9": GRAY}, "test": {"4": GRAY[:2], "9": GRAY[:2]}})
    d = build(root)
    assert d.info["head"] == "4" and d.info["head_tie"] == ["4", "9"]    # 4 training images each after 1 to val
    untied = build(write(tmp_path / "b", {"train": {"4": GRAY[:3], "9": GRAY}, "test": {"4": GRAY, "9": GRAY}}))
    assert untied.info["head"] == "9" and untied.info["head_tie"] == []
    given = build(root, class_order=["9", "4"])
    assert given.info["head"] == "9" and given.info["head_tie"] == []     # your order: no rule had to choose


def test_colour_images_among_grayscale_ones_are_counted(tmp_path):
    # a val/ folder, so that every training image is in the training split the modes are probed on
    root = write(tmp_path, {"train": {"4": ["L"] * 4 + ["RGB"], "9": ["L"] * 5 + ["RGB"]},
                            "val": {"4": ["L"], "9": ["L"]}, "test": {"4": ["L"], "9": ["L"]}})
    d = build(root)
    assert d.input_shape[0] == 3 and d.info["channels"] == 3
    assert d.info["image_modes"] == {"L": 9, "RGB": 2}
    (note,) = d.info["notes"]
    assert note.startswith("3 channels: 2 of the 11 training images probed are in colour (L: 9, RGB: 2)")
    assert "dataset.channels=1" in note
    gray = build(write(tmp_path / "g", {"train": {"4": GRAY, "9": GRAY}, "test": {"4": GRAY, "9": GRAY}}))
    assert gray.input_shape[0] == 1 and gray.info["notes"] == []
    chosen = build(root, channels=1)                                     # you chose: nothing to say
    assert chosen.input_shape[0] == 1 and chosen.info["notes"] == []


@pytest.mark.parametrize("key", ["many_above", "few_below"])
def test_group_thresholds_that_are_not_numbers_are_one_line(tmp_path, key):
    root = write(tmp_path, {"train": {"4": GRAY, "9": GRAY}, "test": {"4": GRAY, "9": GRAY}})
    with pytest.raises(ConfigError) as e:
        build(root, **{key: "abc"})
    assert str(e.value) == f"dataset.{key}='abc' is not allowed: auto or a whole number of training images"


def test_a_setting_the_dataset_does_not_take_is_one_line():
    with pytest.raises(ConfigError) as e:
        build_dataset("cifar_lt", root="nowhere", seed=0, majority_ratio="abc")
    assert str(e.value).startswith("dataset.majority_ratio is not a setting of dataset cifar_lt: its settings are ")
    assert "imbalance" in str(e.value)
