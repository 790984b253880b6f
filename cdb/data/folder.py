"""Bring your own data: an image folder (a sub-folder per class) or list files, made imbalanced on request.

Layout "imagefolder": <path>/train/<class>/*.png and <path>/test/<class>/*.png,
optionally <path>/val/<class>/; labels are the sorted sub-folder names of
train/. A plain <path>/<class>/*.png folder (torchvision's ImageFolder, no
train/ or test/) has `test_per_class` and then `val_per_class` images of every
class carved from it (random, seeded). Layout "lists": train_list / test_list (optionally val_list) files of
`relative/path label` lines, paths relative to `path`. Without a validation
split, `val_per_class` images of every class are carved from train (random,
seeded), as the paper does for CIFAR.

Imbalance (docs/datasets.md, docs/own-data.md): classes are ranked head first,
by default by training size (largest first, ties by label), or in the order
`class_order` gives. `imbalance` keeps floor(n_max * mu**r) images of the
class at rank r (mu = (1/imbalance)**(1/(C-1)), the paper's long-tailed
profile), n_max as large as the images allow; for two classes
`majority_ratio` keeps round(N r) head and N - round(N r) tail images (like
MNIST 4/9), N = `n_train` or as large as the images allow.

Channels, size and normalisation come from the training images unless given;
images of at most SMALL pixels that need no ImageNet crops are held in memory
as uint8 tensors (batched augmentation, like CIFAR), larger ones are decoded
per item with torchvision transforms.
"""
from __future__ import annotations

import statistics
from pathlib import Path

import torch

from cdb.core.errors import DataError, check, is_number
from cdb.core.metrics import shot_report
from cdb.data.base import DatasetSplits, TensorSplit
from .images import (GRAY_MODES, ImageListDataset, decode, image_transform, load_images, probe_images, read_list,
                     scan_image_folder)
from cdb.data.longtail import carve_per_class, class_indices, fit_longtail, fit_majority

HOW = ("Point dataset.path at a folder of <class>/ image sub-folders, or one with train/<class>/ and "
       "test/<class>/ (dataset.layout=imagefolder), or give dataset.train_list and dataset.test_list files of "
       "'relative/path label' lines (dataset.layout=lists).")
SMALL = 64           # images up to this side are "small": in memory, small-image model and trainer
PHOTO_SIZE = 224     # crop size for larger images (ImageNet's)
AUGMENTS = ("auto", "none", "cifar", "imagenet")
MEAN_SAMPLE = 1000   # training images the mean/std of large (on-disk) images is measured on


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


SPLIT_FOLDERS = ("train", "val", "test")


def _plain_class_folder(base: Path) -> bool:
    """<base>/<class>/<image>, with no train/, val/ or test/ sub-folder (torchvision's ImageFolder layout)."""
    subs = [p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return bool(subs) and not set(subs) & set(SPLIT_FOLDERS)


def _carve_test(base: Path, names: list[str], items: list[tuple[str, int]], test_per_class, val_per_class,
                seed: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(train items, test items): `test_per_class` images of every class drawn with the seed, the rest for training
    (validation is carved from the rest afterwards)."""
    check(isinstance(test_per_class, int) and not isinstance(test_per_class, bool) and test_per_class >= 1,
          "dataset.test_per_class", test_per_class, "an integer >= 1 (images per class carved for the test split)")
    full = ImageListDataset(base, items)
    for c, idx in enumerate(class_indices(full.targets, len(names))):
        if len(idx) <= test_per_class + val_per_class:
            raise DataError(f"class {names[c]!r} has {len(idx)} images in {base / names[c]}; "
                            f"dataset.test_per_class={test_per_class} go to test and dataset.val_per_class="
                            f"{val_per_class} to validation, and at least one must remain for training (lower them)")
    rest, carved = carve_per_class(full.targets, len(names), test_per_class, seed, "random", names)
    keep = sorted(int(i) for i in torch.cat(rest))
    return [items[i] for i in keep], [items[int(i)] for i in torch.cat(carved)]


def choose_shape(base: Path, paths: list[str], channels, image_size) -> tuple[int, int, dict[str, int], list[str]]:
    """(channels, image size, {Pillow mode: probed files}, notes): given, or from the training images' headers
    (auto).

    channels auto: 1 when every probed image is grayscale, else 3; when only some are in colour, a note says so
    with the count of each mode (the dry run prints it, run.log logs it). image_size auto: the median short side
    when it is at most SMALL (small images keep their size), else PHOTO_SIZE.
    """
    check(channels in ("auto", 1, 3), "dataset.channels", channels, "auto, 1 or 3")
    check(image_size == "auto" or (isinstance(image_size, int) and image_size > 0), "dataset.image_size",
          image_size, "auto or a size in pixels")
    if channels != "auto" and image_size != "auto":
        return channels, image_size, {}, []
    modes, sizes = probe_images([base / p for p in paths])
    notes = []
    if channels == "auto":
        colour = sum(n for m, n in modes.items() if m not in GRAY_MODES)
        channels = 1 if colour == 0 else 3
        if 0 < colour < sum(modes.values()):
            counts = ", ".join(f"{m}: {n}" for m, n in sorted(modes.items()))
            notes.append(f"3 channels: {colour} of the {sum(modes.values())} training images probed are in colour "
                         f"({counts}), so every image is read as RGB, and model=auto picks a colour model; "
                         "dataset.channels=1 reads them all as grayscale")
    if image_size == "auto":
        side = int(statistics.median(min(h, w) for h, w in sizes))
        image_size = side if side <= SMALL else PHOTO_SIZE
    return channels, image_size, dict(sorted(modes.items())), notes


def choose_augment(augment: str, channels: int, size: int) -> str:
    """auto: none for grayscale up to 32 px (the paper's MNIST setup has none, and flips change digits),
    cifar (crop with padding + flip) up to SMALL px, imagenet (random resized crop, flip, jitter) above."""
    check(augment in AUGMENTS, "dataset.augment", augment, ", ".join(AUGMENTS))
    if augment != "auto":
        return augment
    if size <= 32 and channels == 1:
        return "none"
    return "cifar" if size <= SMALL else "imagenet"


def head_order(names: list[str], available: list[int], class_order) -> list[int]:
    """Labels ranked head first: `class_order` (class names), else by training size, largest first."""
    if class_order is None:
        return sorted(range(len(names)), key=lambda c: (-available[c], c))
    order = [str(n) for n in class_order]
    check(sorted(order) == sorted(names), "dataset.class_order", list(class_order),
          f"every class once, head first, from {names}")
    return [names.index(n) for n in order]


def profile(available: list[int], order: list[int], imbalance, majority_ratio, n_train) -> list[int] | None:
    """Training images kept per label, or None to keep every image."""
    check(imbalance is None or (is_number(imbalance) and imbalance >= 1), "imbalance", imbalance,
          "null (keep the class sizes as they are) or a number >= 1 (largest / smallest class)")
    check(majority_ratio is None or (is_number(majority_ratio) and 0.5 <= majority_ratio < 1), "dataset.majority_ratio", majority_ratio,
          "null or a number in [0.5, 1)")
    check(n_train is None or (isinstance(n_train, int) and n_train > 0), "dataset.n_train", n_train,
          "null or a positive number of training images (with dataset.majority_ratio)")
    if majority_ratio is not None:
        check(len(order) == 2, "dataset.majority_ratio", majority_ratio,
              f"only for two classes (there are {len(order)}): use imbalance= for more")
        check(imbalance is None, "imbalance", imbalance, "null when dataset.majority_ratio is set (give one)")
        ranked = fit_majority(available[order[0]], available[order[1]], majority_ratio, n_train)
    elif imbalance is not None:
        ranked = fit_longtail([available[c] for c in order], imbalance)
    else:
        return None
    counts = [0] * len(order)
    for r, c in enumerate(order):
        counts[c] = ranked[r]
    return counts


def channel_stats(batches) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (unbiased) std of float (N, C, H, W) batches in [0, 1], summed in float64 a batch
    at a time so that a large split never needs a float copy of itself."""
    n, total, squares = 0, 0.0, 0.0
    for x in batches:
        x = x.double()
        n += x.numel() // x.shape[1]
        total = total + x.sum((0, 2, 3))
        squares = squares + (x * x).sum((0, 2, 3))
    mean = total / n
    var = ((squares - n * mean * mean) / max(n - 1, 1)).clamp_min(1e-12)
    return tuple(mean.tolist()), tuple(var.sqrt().tolist())


def build_folder(root: str, path: str = "", seed: int = 0, layout: str = "imagefolder", train_list: str | None = None,
                 val_list: str | None = None, test_list: str | None = None, val_per_class: int = 20,
                 test_per_class: int = 20,
                 imbalance: float | None = None, majority_ratio: float | None = None, n_train: int | None = None,
                 class_order: list[str] | None = None, channels="auto", image_size="auto", resize: int | None = None,
                 augment: str = "auto", mean=None, std=None, jitter: float = 0.4, many_above="auto",
                 few_below="auto") -> DatasetSplits:
    """Splits of a user's image dataset; `path` is relative to `root` (data_root) unless absolute."""
    base = _dataset_folder(root, path, layout, train_list, test_list)
    names, train_items, val, test_items, carved_from = _read_splits(base, layout, train_list, val_list, test_list,
                                                                   val_per_class, test_per_class, seed)
    names, num_classes = _class_names(base, layout, train_list, names, train_items, val, test_items)

    # ---- which images: validation carved (or given), then the imbalance profile, head first ----
    full = ImageListDataset(base, train_items)
    rest, val_items = _validation(full, names, val, val_per_class, seed)
    available = [len(r) for r in rest]
    order = head_order(names, available, class_order)
    counts = profile(available, order, imbalance, majority_ratio, n_train)
    train_ds = full.subset(torch.cat([r[:n] for r, n in zip(rest, counts)] if counts else rest))

    # ---- how the images look: channels, size, augmentation, normalisation ----
    channels, image_size, modes, notes = choose_shape(base, train_ds.paths, channels, image_size)
    if carved_from:
        notes.insert(0, _carved_note(base, test_per_class, val_per_class, seed))
    augment = choose_augment(augment, channels, image_size)
    _check_mean_std(mean, std, channels)
    in_memory = image_size <= SMALL and augment != "imagenet"
    splits, labels = _split_files(train_ds, val_items, test_items)
    if in_memory:
        made, mean, std, batched, transforms = _in_memory_splits(base, splits, labels, channels, image_size, augment,
                                                                 mean, std)
    else:
        made, mean, std, batched, transforms = _on_disk_splits(base, train_ds, splits, labels, channels, image_size,
                                                               resize, augment, jitter, mean, std, seed)
    groups, group_text = shot_report(torch.bincount(labels["train"], minlength=num_classes).tolist(), many_above,
                                     few_below)
    return DatasetSplits(
        name="folder", train=made["train"], val=made["val"], test=made["test"], num_classes=num_classes,
        class_names=names, input_shape=(channels, image_size, image_size), mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std), augment=batched,
        info={"path": str(base), "head": names[order[0]], "head_tie": _head_tie(names, available, class_order),
              "class_order": [names[c] for c in order],
              "imbalance": imbalance, "majority_ratio": majority_ratio, "channels": channels,
              "image_size": image_size, "augment": augment, "in_memory": in_memory, "transforms": transforms,
              "mean": [round(float(m), 4) for m in mean], "std": [round(float(s), 4) for s in std],
              "groups": groups, "group_thresholds": group_text, "image_modes": modes,
              "carved": None if carved_from is None else {  # a plain <class>/ folder: how test and val were drawn
                  "from": carved_from, "test_per_class": test_per_class, "val_per_class": val_per_class,
                  "seed": int(seed)},
              "notes": notes,  # what a user must read before training: the dry run prints them, run.log logs them
              "files": splits},  # the image of every row of each split, for audits (not in data.json)
    )


def _dataset_folder(root: str, path: str, layout: str, train_list: str | None, test_list: str | None) -> Path:
    """The dataset's folder (`path`, relative to `root` unless absolute), refused in one line when it is missing
    or the layout or its list files are not given right."""
    check(layout in ("imagefolder", "lists"), "dataset.layout", layout, "imagefolder or lists")
    check(bool(path), "dataset.path", path, "the folder of your dataset (dataset.path=/where/it/is)")
    base = Path(path).expanduser()
    base = base if base.is_absolute() else Path(root).expanduser() / base
    if not base.is_dir():
        raise DataError(f"dataset folder {base} is missing. {HOW}")
    if layout == "lists":
        check(bool(train_list) and bool(test_list), "dataset.train_list/test_list", (train_list, test_list),
              "both list files, for layout=lists")
    return base


def _check_val_per_class(val_per_class) -> None:
    """val_per_class is a count of images per class to carve for validation."""
    check(isinstance(val_per_class, int) and val_per_class >= 1, "dataset.val_per_class", val_per_class,
          "an integer >= 1 (images per class carved from train for validation)")


def _read_splits(base: Path, layout: str, train_list, val_list, test_list, val_per_class, test_per_class,
                 seed: int):
    """(class names or None, train items, (names, val items) or None, test items, the folder test and validation
    are carved from or None): the splits as the layout gives them, or a plain <class>/ folder with test carved
    from it (validation is carved later, from what trains)."""
    train = _load_split(base, layout, "train", train_list, None)
    if train is None and layout == "imagefolder" and _plain_class_folder(base):
        _check_val_per_class(val_per_class)
        names, items = scan_image_folder(base)
        if len(names) < 2:
            raise DataError(f"{base} has one class folder ({names[0]}): a classifier needs at least two; add a "
                            "sub-folder of images per class")
        train_items, test_items = _carve_test(base, names, items, test_per_class, val_per_class, seed)
        return names, train_items, None, test_items, str(base)
    if train is None:
        raise DataError(f"training images not found: {base / 'train'} is missing. {HOW}")
    names, train_items = train
    test = _load_split(base, layout, "test", test_list, names)
    if test is None:
        raise DataError(f"test images not found: {base / 'test'} is missing. {HOW}")
    return names, train_items, _load_split(base, layout, "val", val_list, names), test[1], None


def _class_names(base: Path, layout: str, train_list, names, train_items, val, test_items) -> tuple[list[str], int]:
    """(class names, class count): the folder names, or for list files the labels 0..max as text; refused in one
    line when there is a single class or a val/test label outside the training labels."""
    num_classes = len(names) if names else max(label for _, label in train_items) + 1
    names = names or [str(c) for c in range(num_classes)]
    if num_classes < 2:
        where, hint = ((base / "train", "add a sub-folder of images per class") if layout == "imagefolder"
                       else (base / train_list, "list images of at least two labels"))
        raise DataError(f"{where} has one class ({names[0]}): a classifier needs at least two; {hint}")
    for split, its in (("val", val[1] if val else []), ("test", test_items)):
        bad = [label for _, label in its if not 0 <= label < num_classes]
        if bad:
            raise DataError(f"{split} split has label {bad[0]}, outside the training labels 0..{num_classes - 1}")
    return names, num_classes


def _validation(full: ImageListDataset, names: list[str], val, val_per_class, seed: int):
    """(indices of `full` per class that may train, validation items): `val_per_class` images of every class carved
    from train (seeded) when there is no validation split, else the given split and every training image (shuffled
    with the seed, so that an imbalance profile keeps a random subset)."""
    if val is None:
        _check_val_per_class(val_per_class)
        rest, carved = carve_per_class(full.targets, len(names), val_per_class, seed, "random", names)
        return rest, [(full.paths[int(i)], int(full.targets[int(i)])) for i in torch.cat(carved)]
    g = torch.Generator().manual_seed(int(seed))
    return [idx[torch.randperm(len(idx), generator=g)] for idx in class_indices(full.targets, len(names))], val[1]


def _carved_note(base: Path, test_per_class: int, val_per_class: int, seed: int) -> str:
    """The note that says how test and validation were drawn from a plain <class>/ folder."""
    return (f"{base} holds class folders, no train/ or test/: test ({test_per_class} images per class) "
            f"and validation ({val_per_class} per class) are drawn from them with seed {seed} "
            "(dataset.test_per_class, dataset.val_per_class); the rest trains")


def _check_mean_std(mean, std, channels: int) -> None:
    """A given mean or std has one number per channel."""
    check(mean is None or len(mean) == channels, "dataset.mean", mean, f"null (from the training images) or "
          f"{channels} numbers in [0, 1]")
    check(std is None or len(std) == channels, "dataset.std", std, f"null or {channels} positive numbers")


def _split_files(train_ds: ImageListDataset, val_items, test_items) -> tuple[dict, dict]:
    """({split: image paths}, {split: int64 labels}) of train, val and test."""
    splits = {"train": train_ds.paths, "val": [p for p, _ in val_items], "test": [p for p, _ in test_items]}
    labels = {"train": train_ds.targets, "val": torch.as_tensor([lb for _, lb in val_items], dtype=torch.long),
              "test": torch.as_tensor([lb for _, lb in test_items], dtype=torch.long)}
    return splits, labels


def _head_tie(names: list[str], available: list[int], class_order) -> list[str]:
    """The classes tied for the largest, when more than one is and no class_order was given (head_order then took
    the first in label order, the sorted folder names)."""
    tie = [names[c] for c in range(len(names)) if available[c] == max(available)] if class_order is None else []
    return tie if len(tie) > 1 else []


def _in_memory_splits(base: Path, splits: dict, labels: dict, channels: int, image_size: int, augment: str, mean,
                      std):
    """(TensorSplits of uint8 images, mean, std, batched augmentation, transforms text) for small images held in
    memory; mean and std measured on the training split unless both are given."""
    x = {s: load_images([base / p for p in ps], channels, image_size) for s, ps in splits.items()}
    given = mean is not None and std is not None
    mean, std = (tuple(mean), tuple(std)) if given else channel_stats(b.float() / 255 for b in x["train"].split(1024))
    made = {s: TensorSplit(x[s], labels[s]) for s in splits}
    batched = {"none": "none", "cifar": "crop_flip"}[augment]
    transforms = {"train": f"{'none' if batched == 'none' else 'random crop (pad 4) + horizontal flip'}, "
                           f"normalise", "eval": "normalise"}
    return made, mean, std, batched, transforms


def _on_disk_splits(base: Path, train_ds: ImageListDataset, splits: dict, labels: dict, channels: int,
                    image_size: int, resize: int | None, augment: str, jitter: float, mean, std, seed: int):
    """(ImageListDatasets decoded per item, mean, std, batched augmentation "none", transforms text) for larger
    images: resized, cropped and augmented by torchvision transforms; mean and std measured on a sample of the
    training images unless both are given."""
    resize = resize or round(image_size * 256 / 224)
    check(0 < image_size <= resize, "dataset.image_size", image_size, f"a crop size in (0, resize={resize}]")
    if mean is None or std is None:
        mean, std = _sample_mean_std(base, train_ds, channels, image_size, resize, seed)
    made = {s: ImageListDataset(base, list(zip(splits[s], labels[s].tolist())),
                                image_transform(s == "train", image_size, resize, jitter, mean, std, augment),
                                channels) for s in splits}
    crop = f"resize {resize} + centre crop {image_size}"
    transforms = {"train": {"none": crop, "cifar": f"{crop}, random crop (pad {max(1, image_size // 8)}) + flip",
                            "imagenet": f"random resized crop {image_size} + flip + colour jitter {jitter}"}[augment]
                  + ", normalise", "eval": f"{crop}, normalise"}
    return made, mean, std, "none", transforms


def _sample_mean_std(base: Path, train: ImageListDataset, channels: int, size: int, resize: int, seed: int):
    """Mean/std of up to MEAN_SAMPLE training images (seeded draw) after the evaluation crop."""
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(len(train), generator=g)[:MEAN_SAMPLE]
    fit = image_transform(False, size, resize, 0.0, (0.0,) * channels, (1.0,) * channels)
    return channel_stats(fit(decode(base / train.paths[int(i)], channels)).unsqueeze(0) for i in idx)
