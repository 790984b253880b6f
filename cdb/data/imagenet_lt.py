"""ImageNet-LT (Liu et al. 2019, OLTR): 1000 classes, 115,846 train images (1280 to 5 per class),
val 20 per class, test 50 per class (paper sec. 4.1).

The splits are OLTR's list files (`relative/path.JPEG label` per line) over the
ImageNet-2012 images. Training: RandomResizedCrop 224, horizontal flip, colour
jitter 0.4 (OLTR); validation/test: resize 256, centre crop 224; ImageNet
mean/std. info["groups"] holds the many/medium/few-shot classes (thresholds in
info["group_thresholds"]), so metrics.json reports many_/medium_/few_ metrics.
"""
from __future__ import annotations

from pathlib import Path

import torch

from cdb.core.errors import DataError, check
from cdb.core.metrics import shot_groups, shot_thresholds_text
from cdb.data.base import DatasetSplits
from cdb.data.images import ImageListDataset, image_transform, read_list

HOW = ("ImageNet-LT's list files (ImageNet_LT_train.txt, ImageNet_LT_val.txt, ImageNet_LT_test.txt) come with "
       "OLTR (https://github.com/zhmiao/OpenLongTailRecognition-OLTR, 'ImageNet_LT_open' download); put them in "
       "<data_root>/ImageNet_LT (or set dataset.lists), and the ImageNet-2012 images they refer to "
       "(train/..., val/...) under dataset.images.")


def _resolve(root: Path, sub: str) -> Path:
    p = Path(sub).expanduser()
    return p if p.is_absolute() else root / p


def build_imagenet_lt(root: str, seed: int = 0, lists: str = "ImageNet_LT", images: str = "ImageNet",
                      train_list: str = "ImageNet_LT_train.txt", val_list: str = "ImageNet_LT_val.txt",
                      test_list: str = "ImageNet_LT_test.txt", image_size: int = 224, resize: int = 256,
                      jitter: float = 0.4, many_above: int = 100, few_below: int = 20) -> DatasetSplits:
    """Splits from the list files in <root>/<lists>; image paths are relative to <root>/<images>.

    `seed` is unused: the splits are fixed by the list files.
    """
    check(0 < image_size <= resize, "dataset.image_size", image_size, f"a crop size in (0, resize={resize}]")
    root_p = Path(root).expanduser()
    list_dir, image_dir = _resolve(root_p, lists), _resolve(root_p, images)
    items = {s: read_list(list_dir / f, HOW) for s, f in (("train", train_list), ("val", val_list),
                                                           ("test", test_list))}
    if not image_dir.is_dir():
        raise DataError(f"image folder {image_dir} is missing. {HOW}")
    labels = [label for _, label in items["train"]]
    num_classes = max(labels) + 1
    for split, its in items.items():
        bad = [label for _, label in its if not 0 <= label < num_classes]
        if bad:
            raise DataError(f"{split} list has label {bad[0]}, outside the training labels 0..{num_classes - 1}")
    train_tf = image_transform(True, image_size, resize, jitter)
    eval_tf = image_transform(False, image_size, resize)
    train = ImageListDataset(image_dir, items["train"], train_tf)
    counts = torch.bincount(train.targets, minlength=num_classes)
    return DatasetSplits(
        name="imagenet_lt",
        train=train,
        val=ImageListDataset(image_dir, items["val"], eval_tf),
        test=ImageListDataset(image_dir, items["test"], eval_tf),
        num_classes=num_classes,
        class_names=_class_names(items["train"], num_classes),
        input_shape=(3, image_size, image_size),
        info={"groups": shot_groups(counts, many_above, few_below),
              "group_thresholds": shot_thresholds_text(many_above, few_below)},
    )


def _class_names(items: list[tuple[str, int]], num_classes: int) -> list[str]:
    """The WordNet id (parent folder, e.g. n01440764) of each class when every class has one; else the label."""
    names: dict[int, set[str]] = {}
    for path, label in items:
        names.setdefault(label, set()).add(Path(path).parent.name)
    if all(len(names.get(c, ())) == 1 and next(iter(names[c])) for c in range(num_classes)):
        return [next(iter(names[c])) for c in range(num_classes)]
    return [str(c) for c in range(num_classes)]
