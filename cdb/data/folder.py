"""Bring your own data: an image folder (a sub-folder per class) or list files, made long-tailed on request.

Layout "imagefolder": <path>/train/<class>/*.jpg and <path>/test/<class>/*.jpg,
optionally <path>/val/<class>/*.jpg; class names are the sorted sub-folder
names of train/. Layout "lists": train_list / test_list (optionally val_list)
files of `relative/path label` lines, paths relative to `path`.
Without a validation split, `val_per_class` images of every class are carved
from train (random, seeded), as the paper does for CIFAR. With `imbalance` > 1,
train then keeps floor(n_max * mu**c) images of class c (n_max = the smallest
class after carving, mu = (1/imbalance)**(1/(C-1)), classes in label order).
Images are decoded and transformed like ImageNet-LT (224 crops, ImageNet
mean/std); many/medium/few-shot groups are reported.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import DataError, check
from ..metrics import shot_groups, shot_thresholds_text
from .base import DatasetSplits
from .images import ImageListDataset, image_transform, read_list, scan_image_folder
from .longtail import carve_per_class, class_indices, longtail_counts, take_first

HOW = ("Point dataset.path at a folder with train/<class>/ and test/<class>/ image sub-folders "
       "(dataset.layout=imagefolder), or give dataset.train_list and dataset.test_list files of "
       "'relative/path label' lines (dataset.layout=lists).")


def _load_split(base: Path, layout: str, split: str, list_file: str | None,
                classes: list[str] | None) -> tuple[list[str] | None, list[tuple[str, int]]] | None:
    """(class names or None, items with paths relative to `base`) of one split, or None if it is optional and absent."""
    if layout == "imagefolder":
        folder = base / split
        if not folder.is_dir():
            return None
        names, items = scan_image_folder(folder)
        if classes is not None and names != classes:
            raise DataError(f"{folder} has classes {names[:5]}..., which differ from train's {classes[:5]}...")
        return names, [(f"{split}/{p}", label) for p, label in items]
    if not list_file:
        return None
    return None, read_list(base / list_file, HOW)


def build_folder(root: str, path: str = "", seed: int = 0, layout: str = "imagefolder", train_list: str | None = None,
                 val_list: str | None = None, test_list: str | None = None, val_per_class: int = 20,
                 imbalance: float | None = None, image_size: int = 224, resize: int = 256, jitter: float = 0.4,
                 many_above: int = 100, few_below: int = 20) -> DatasetSplits:
    """Splits of a user's image dataset; `path` is relative to `root` (data_root) unless absolute."""
    check(layout in ("imagefolder", "lists"), "dataset.layout", layout, "imagefolder or lists")
    check(bool(path), "dataset.path", path, "the folder of your dataset (dataset.path=/where/it/is)")
    check(0 < image_size <= resize, "dataset.image_size", image_size, f"a crop size in (0, resize={resize}]")
    check(imbalance is None or imbalance >= 1, "dataset.imbalance", imbalance,
          "null (keep the class sizes as they are) or a number >= 1")
    base = Path(path).expanduser()
    base = base if base.is_absolute() else Path(root).expanduser() / base
    if not base.is_dir():
        raise DataError(f"dataset folder {base} is missing. {HOW}")
    if layout == "lists":
        check(bool(train_list) and bool(test_list), "dataset.train_list/test_list", (train_list, test_list),
              "both list files, for layout=lists")
    train = _load_split(base, layout, "train", train_list, None)
    if train is None:
        raise DataError(f"training images not found: {base / 'train'} is missing. {HOW}")
    names, train_items = train
    test = _load_split(base, layout, "test", test_list, names)
    if test is None:
        raise DataError(f"test images not found: {base / 'test'} is missing. {HOW}")
    val = _load_split(base, layout, "val", val_list, names)
    num_classes = len(names) if names else max(label for _, label in train_items) + 1
    names = names or [str(c) for c in range(num_classes)]
    for split, its in (("val", val[1] if val else []), ("test", test[1])):
        bad = [label for _, label in its if not 0 <= label < num_classes]
        if bad:
            raise DataError(f"{split} split has label {bad[0]}, outside the training labels 0..{num_classes - 1}")
    train_tf, eval_tf = image_transform(True, image_size, resize, jitter), image_transform(False, image_size, resize)
    full = ImageListDataset(base, train_items, train_tf)
    if val is None:
        check(isinstance(val_per_class, int) and val_per_class >= 1, "dataset.val_per_class", val_per_class,
              "an integer >= 1 (images per class carved from train for validation)")
        rest, carved = carve_per_class(full.targets, num_classes, val_per_class, seed, "random", names)
        val_ds = full.subset(torch.cat(carved), eval_tf)
    else:
        g = torch.Generator().manual_seed(int(seed))  # shuffled, so an imbalance profile keeps a random subset
        rest = [idx[torch.randperm(len(idx), generator=g)] for idx in class_indices(full.targets, num_classes)]
        val_ds = ImageListDataset(base, val[1], eval_tf)
    if imbalance is not None and imbalance > 1:
        n_max = min(len(r) for r in rest)
        keep = take_first(rest, longtail_counts(n_max, num_classes, imbalance), names)
    else:
        keep = torch.cat(rest)
    train_ds = full.subset(keep)
    counts = torch.bincount(train_ds.targets, minlength=num_classes)
    return DatasetSplits(
        name="folder",
        train=train_ds,
        val=val_ds,
        test=ImageListDataset(base, test[1], eval_tf),
        num_classes=num_classes,
        class_names=names,
        input_shape=(3, image_size, image_size),
        info={"groups": shot_groups(counts, many_above, few_below),
              "group_thresholds": shot_thresholds_text(many_above, few_below),
              "imbalance": imbalance, "path": str(base)},
    )
