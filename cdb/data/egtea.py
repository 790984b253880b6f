"""EGTEA Gaze+ verb classification, split 1 (paper sec. 4.1-4.2, Tables 6-7, Figure 1).

Clips are folders of extracted frames (scripts/extract_frames.py makes them
from the released video clips). Split files list `clip_name action verb noun`
with 1-based labels; the verb (19 classes) is the target. Validation = the
training clips of subjects P20-P26 (1927 clips), leaving 6372 for training;
test = the test split (2022 clips).

Each item is 10 frames (TSN-style: the clip cut into 10 equal segments; one
random frame per segment when training, the centre frame of each segment for
validation/test), resized to a short side of 256, then random crop 224 +
random rotation + horizontal flip when training (the same draw for all 10
frames of a clip) or a centre crop 224 otherwise. Output: float32
(T=10, 3, 224, 224); the 3D model permutes it to (3, T, H, W) itself.

Normalisation (`normalize`): "kinetics" (default) = RGB in 0-255 minus the
mean [114.77, 107.74, 99.48] and no division, exactly what Hara et al.'s
Kinetics-pretrained 3D-ResNeXt weights were trained on; "imagenet" = [0, 1]
with ImageNet mean/std (for models trained from scratch or ImageNet weights);
"authors" = BGR in 0-255 without mean subtraction (the authors' code, which
read frames with OpenCV). The authors also drew random frames at test time;
that is a bug and is not offered.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from cdb.core.errors import DataError, check
from cdb.data.base import DatasetSplits
from cdb.data.images import IMAGENET_MEAN, IMAGENET_STD, decode

KINETICS_MEAN = (114.7748, 107.7354, 99.4750)  # Hara et al. (3D-ResNets-PyTorch), RGB, 0-255 scale
VAL_SUBJECTS = tuple(f"P{i}" for i in range(20, 27))
HOW = ("EGTEA Gaze+ comes from https://cbs.ic.gatech.edu/fpv/ (cropped action clips and action annotations: "
       "train_split1.txt, test_split1.txt, verb_idx.txt). Extract frames with "
       "`python scripts/extract_frames.py <clips folder> <data_root>/EGTEA/frames`, and set dataset.train_list / "
       "dataset.test_list / dataset.frames if your files live elsewhere.")


def read_split(path: Path) -> list[tuple[str, int]]:
    """`clip_name action verb noun` lines (1-based) -> [(clip_name, verb - 1)]."""
    if not path.is_file():
        raise DataError(f"EGTEA split file {path} is missing. {HOW}")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3 or not parts[2].isdigit():
            raise DataError(f"{path}:{n}: expected 'clip_name action verb noun', got {line!r}")
        out.append((parts[0], int(parts[2]) - 1))
    return out


def read_names(path: Path, num_classes: int) -> list[str]:
    """Verb names from `name index` lines (1-based; names may hold spaces); 'verb_k' when the file is absent."""
    names = [f"verb_{c + 1}" for c in range(num_classes)]
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.rsplit(None, 1)
            if len(parts) == 2 and parts[1].isdigit() and 1 <= int(parts[1]) <= num_classes:
                names[int(parts[1]) - 1] = parts[0]
    return names


def segment_indices(n_frames: int, segments: int, train: bool, gen: torch.Generator | None = None) -> list[int]:
    """0-based frame indices: one per equal segment; random within it (train) or its centre (eval).

    Segment i covers frames [floor(i n / T), floor((i + 1) n / T)); a clip
    shorter than T repeats frames.
    """
    out = []
    for i in range(segments):
        lo = (i * n_frames) // segments
        hi = max(((i + 1) * n_frames) // segments, lo + 1)
        if train:
            out.append(lo + int(torch.randint(hi - lo, (1,), generator=gen)))
        else:
            out.append(min(int((i + 0.5) * n_frames / segments), n_frames - 1))
    return out


def clip_transform(train: bool, size: int, resize: int, rotation: float):
    """Resize short side, then random crop/rotation/flip (train) or centre crop; one draw per clip."""
    if train:
        return v2.Compose([v2.Resize(resize, antialias=True), v2.RandomCrop(size),
                           v2.RandomRotation(rotation), v2.RandomHorizontalFlip()])
    return v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(size)])


def normalize_clip(x: torch.Tensor, mode: str) -> torch.Tensor:
    """uint8 (T, 3, H, W) RGB -> float32 in the input convention of the model weights (see module doc)."""
    x = x.float()
    if mode == "kinetics":
        return x - torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1)
    if mode == "imagenet":
        return (x / 255.0 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    if mode == "authors":
        return x.flip(1)
    raise ValueError(mode)


class ClipDataset(Dataset):
    """(frames (T, 3, H, W) float32, verb) per clip, read from a folder of frame images."""

    def __init__(self, clips: list[tuple[str, int]], n_frames: list[int], frame_dirs: list[Path], template: str,
                 first_frame: int, segments: int, train: bool, transform, normalize: str):
        self.clips = [c for c, _ in clips]
        self.targets = torch.as_tensor([v for _, v in clips], dtype=torch.long)
        self.n_frames, self.frame_dirs = n_frames, frame_dirs
        self.template, self.first_frame, self.segments = template, first_frame, segments
        self.train, self.transform, self.normalize = train, transform, normalize

    def __len__(self) -> int:
        return len(self.clips)

    def frame_paths(self, i: int) -> list[Path]:
        idx = segment_indices(self.n_frames[i], self.segments, self.train)
        return [self.frame_dirs[i] / self.template.format(self.first_frame + j) for j in idx]

    def __getitem__(self, i: int):
        frames = torch.stack([decode(p) for p in self.frame_paths(i)])
        return normalize_clip(self.transform(frames), self.normalize), int(self.targets[i])


def _count_frames(folder: Path, suffix: str) -> int:
    try:
        return sum(1 for e in os.scandir(folder) if e.name.endswith(suffix))
    except FileNotFoundError:
        raise DataError(f"frame folder {folder} is missing. {HOW}") from None


def _check_settings(normalize, segments, image_size, resize, rotation, majority, num_classes) -> None:
    check(normalize in ("kinetics", "imagenet", "authors"), "dataset.normalize", normalize,
          "kinetics (Hara et al.'s pretrained weights), imagenet, or authors (BGR 0-255)")
    check(segments >= 1, "dataset.segments", segments, "an integer >= 1")
    check(0 < image_size <= resize, "dataset.image_size", image_size, f"a crop size in (0, resize={resize}]")
    check(rotation >= 0, "dataset.rotation", rotation, "a number of degrees >= 0")
    check(1 <= majority < num_classes, "dataset.majority", majority, f"a class count in [1, {num_classes})")


def _splits(base: Path, train_list, test_list, val_list, val_subjects, num_classes):
    """(train, val, test) clip lists: validation from its own file, else the training clips of `val_subjects`."""
    train_all = read_split(base / train_list)
    test = read_split(base / test_list)
    if val_list:
        val, train = read_split(base / val_list), train_all
    else:
        subjects = set(val_subjects)
        val = [c for c in train_all if c[0].split("-")[0] in subjects]
        train = [c for c in train_all if c[0].split("-")[0] not in subjects]
    for name, split in (("train", train), ("validation", val), ("test", test)):
        if not split:
            raise DataError(f"the EGTEA {name} split is empty (check dataset.val_subjects and the split files)")
        bad = [v + 1 for _, v in split if not 0 <= v < num_classes]
        if bad:
            raise DataError(f"EGTEA {name} split has verb {bad[0]}, outside 1..{num_classes} (dataset.num_classes)")
    return train, val, test


def build_egtea(root: str, seed: int = 0, folder: str = "EGTEA", train_list: str = "action_annotation/train_split1.txt",
                test_list: str = "action_annotation/test_split1.txt", val_list: str | None = None,
                verb_names: str = "action_annotation/verb_idx.txt", frames: str = "frames",
                clip_path: str = "{clip}", frame_template: str = "img_{:05d}.jpg", first_frame: int = 1,
                val_subjects: Sequence[str] = VAL_SUBJECTS, num_classes: int = 19, segments: int = 10,
                image_size: int = 224, resize: int = 256, rotation: float = 10.0, normalize: str = "kinetics",
                majority: int = 5) -> DatasetSplits:
    """Splits for EGTEA split 1; paths are relative to <root>/<folder> unless absolute.

    clip_path locates a clip's frames under `frames`: "{clip}" (one folder per
    clip, scripts/extract_frames.py) or "{video}/{clip}" (the authors' layout,
    video = the first three dash-separated parts of the clip name).
    val_list (optional) replaces the subject rule with an explicit validation
    split file in the same format. `seed` is unused: the splits are fixed.
    """
    _check_settings(normalize, segments, image_size, resize, rotation, majority, num_classes)
    base = Path(root).expanduser() / folder
    train, val, test = _splits(base, train_list, test_list, val_list, val_subjects, num_classes)
    frame_root = base / frames
    if not frame_root.is_dir():
        raise DataError(f"EGTEA frame folder {frame_root} is missing. {HOW}")
    suffix = Path(frame_template.format(first_frame)).suffix

    def make(clips, is_train):
        dirs = [frame_root / clip_path.format(clip=c, video="-".join(c.split("-")[:3])) for c, _ in clips]
        counts = [_count_frames(d, suffix) for d in dirs]
        empty = [d for d, n in zip(dirs, counts) if n == 0]
        if empty:
            raise DataError(f"frame folder {empty[0]} holds no '*{suffix}' frames. {HOW}")
        tf = clip_transform(is_train, image_size, resize, rotation)
        return ClipDataset(clips, counts, dirs, frame_template, first_frame, segments, is_train, tf, normalize)

    train_ds = make(train, True)
    counts = torch.bincount(train_ds.targets, minlength=num_classes)
    # Table 7: the `majority` most frequent training verbs (ties by label) vs the rest.
    order = sorted(range(num_classes), key=lambda c: (-int(counts[c]), c))
    return DatasetSplits(
        name="egtea",
        train=train_ds,
        val=make(val, False),
        test=make(test, False),
        num_classes=num_classes,
        class_names=read_names(base / verb_names, num_classes),
        input_shape=(segments, 3, image_size, image_size),
        info={"groups": {"majority": sorted(order[:majority]), "minority": sorted(order[majority:])},
              "normalize": normalize, "val_rule": val_list or f"training clips of subjects {sorted(val_subjects)}"},
    )
