"""Tiny datasets written in the real on-disk formats (CIFAR python pickles, ImageNet-LT list files + JPEGs,
EGTEA frame folders + split files, image folders), for the long-tail tests, and the long-tailed class counts
they should give."""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def write_cifar100(root: Path, train_per_class: int, test_per_class: int, seed: int = 0) -> Path:
    """<root>/cifar-100-python/{train,test,meta} like the real release: dicts with 'data' (uint8 N x 3072,
    channel-major 32x32 planes), 'fine_labels', 'coarse_labels', 'filenames'; meta has 'fine_label_names'."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, per in (("train", train_per_class), ("test", test_per_class)):
        labels = np.tile(np.arange(100), per)  # interleaved classes, as in the real file (not sorted)
        rng.shuffle(labels)
        data = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        obj = {"data": data, "fine_labels": labels.tolist(), "coarse_labels": (labels // 5).tolist(),
               "filenames": [f"img_{i}.png" for i in range(len(labels))], "batch_label": name}
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))
    meta = {"fine_label_names": [f"class{c:02d}" for c in range(100)],
            "coarse_label_names": [f"super{c:02d}" for c in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def write_jpeg(path: Path, h: int, w: int, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = torch.full((3, h, w), value, dtype=torch.uint8)
    img[0] = (torch.arange(w) * 7 % 256).to(torch.uint8)  # some structure so crops and flips differ
    Image.fromarray(img.permute(1, 2, 0).numpy()).save(path, format="JPEG", quality=90)


def write_imagenet_lt(root: Path, counts: list[int], val_per_class: int = 1, test_per_class: int = 2,
                      size: int = 40) -> None:
    """<root>/ImageNet_LT/ImageNet_LT_{train,val,test}.txt over JPEGs in <root>/ImageNet/{train,val}/<wnid>/."""
    lists = root / "ImageNet_LT"
    lists.mkdir(parents=True, exist_ok=True)
    lines = {"train": [], "val": [], "test": []}
    for c, n in enumerate(counts):
        wnid = f"n{c:08d}"
        for split, k, folder in (("train", n, "train"), ("val", val_per_class, "train"),
                                 ("test", test_per_class, "val")):
            for i in range(k):
                rel = f"{folder}/{wnid}/{wnid}_{split}_{i}.JPEG"
                write_jpeg(root / "ImageNet" / rel, size, size + 8, 10 * c + i)
                lines[split].append(f"{rel} {c}")
    for split, ls in lines.items():
        (lists / f"ImageNet_LT_{split}.txt").write_text("\n".join(ls) + "\n")


def write_egtea(root: Path, clips: dict[str, list[tuple[str, int, int]]], frames_per_clip: int = 12,
                size: tuple[int, int] = (24, 32)) -> Path:
    """<root>/EGTEA/action_annotation/{train,test}_split1.txt (`clip action verb noun`, 1-based) and
    <root>/EGTEA/frames/<clip>/img_00001.jpg ...; clips = {split: [(clip name, verb, n_frames or 0)]}.
    Frame k of a clip has all pixels of channel 1 equal to 10 * k, so tests can see which frames were read."""
    base = root / "EGTEA"
    ann = base / "action_annotation"
    ann.mkdir(parents=True, exist_ok=True)
    for split, items in clips.items():
        lines = []
        for name, verb, n in items:
            lines.append(f"{name} {verb} {verb} 1")
            for k in range(1, (n or frames_per_clip) + 1):
                write_jpeg(base / "frames" / name / f"img_{k:05d}.jpg", size[0], size[1], min(10 * k, 255))
        (ann / f"{split}_split1.txt").write_text("\n".join(lines) + "\n")
    (ann / "verb_idx.txt").write_text("\n".join(f"Verb {v} {v}" for v in range(1, 20)) + "\n")
    return base


def write_image_folder(root: Path, per_class: dict[str, int], test_per_class: int = 1, size: int = 20) -> Path:
    """<root>/train/<class>/*.jpg and <root>/test/<class>/*.jpg."""
    for c, (name, n) in enumerate(sorted(per_class.items())):
        for i in range(n):
            write_jpeg(root / "train" / name / f"{i}.jpg", size, size, 20 * c + i)
        for i in range(test_per_class):
            write_jpeg(root / "test" / name / f"{i}.jpg", size, size, 20 * c + i)
    return root


def expected_counts(n_max: int, classes: int, imbalance: float) -> list[int]:
    """floor(n_max * mu**c), mu = (1/imbalance)**(1/(C-1)), in exact arithmetic: the 1e-9 undoes float
    rounding of mu**c that can land just under an integer (450 * mu**99 = 44.99999... for imbalance 10)."""
    mu = (1.0 / imbalance) ** (1.0 / (classes - 1))
    return [math.floor(n_max * mu ** c + 1e-9) for c in range(classes)]
