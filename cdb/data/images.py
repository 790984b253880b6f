"""Image files on disk: list files, JPEG/PNG decoding and the standard ImageNet-style transforms.

Shared by the ImageNet-LT, EGTEA and bring-your-own-folder builders. Decoding
uses Pillow, transforms are torchvision.transforms.v2 on uint8 tensors; items
come out normalised float32 (channels, size, size). Small folders are loaded
whole into a uint8 tensor instead (load_images).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms import v2

from cdb.core.errors import DataError, check, is_count

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})  # Pillow modes without colour
HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})  # 16-bit grayscale (PNG), as Pillow opens it


def read_list(path: Path, how: str) -> list[tuple[str, int]]:
    """Lines `relative/path label` -> [(path, label)]; blank lines skipped, paths may not contain spaces."""
    if not path.is_file():
        raise DataError(f"list file {path} is missing. {how}")
    items = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{path}:{n}: expected 'relative/path label', got {line!r}")
        items.append((parts[0], int(parts[1])))
    if not items:
        raise DataError(f"list file {path} has no entries. {how}")
    return items


def decode(path: Path, channels: int = 3) -> torch.Tensor:
    """uint8 (channels, H, W) from an image file: channels=3 gives RGB (grayscale, CMYK and PNG-named-.JPEG
    files become RGB), channels=1 gives luminance.

    Uses Pillow (a torchvision dependency): torchvision.io's decoders are
    deprecated from torchvision 0.29 on.
    """
    try:
        with Image.open(path) as img:
            arr = np.asarray(to_8bit(img).convert("L" if channels == 1 else "RGB"))
    except Image.DecompressionBombError as exc:
        raise DataError(f"image {path} is too large to decode safely ({exc}); shrink it or remove it") from None
    except FileNotFoundError:
        raise DataError(f"image {path} is missing (listed in the split files); check the image folder "
                        "setting (dataset.images / dataset.path / dataset.frames)") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot decode image {path}: {exc}") from None
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


def to_8bit(img):
    """A Pillow image with 8 bits per channel. Pillow's convert() clips 16-bit grayscale at 255 (a 12-bit scan came
    out 99 % white); this scales it by its bit depth instead (0-65535 -> 0-255)."""
    if img.mode not in HIGH_DEPTH_MODES:
        return img
    a = np.clip(np.asarray(img, dtype=np.int64), 0, 65535)
    return Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8), "L")


MAX_IMAGE_SIZE = 4096  # pixels a side: a bigger dataset.image_size makes tensors no machine can hold


def check_image_size(size) -> None:
    check(not is_count(size) or 0 < size <= MAX_IMAGE_SIZE, "dataset.image_size", size,
          f"a size in pixels from 1 to {MAX_IMAGE_SIZE} (or auto)")


def probe_images(paths: Sequence[Path], limit: int = 256) -> tuple[dict[str, int], list[tuple[int, int]]]:
    """({Pillow mode: files}, (height, width) sizes) of up to `limit` files spread evenly over `paths`; reads
    headers only."""
    step = max(1, len(paths) // limit)
    modes: dict[str, int] = {}
    sizes = []
    for path in list(paths)[::step][:limit]:
        try:
            with Image.open(path) as img:
                modes[img.mode] = modes.get(img.mode, 0) + 1
                sizes.append((img.height, img.width))
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise DataError(f"cannot decode image {path}: {exc}") from None
    return modes, sizes


def load_images(paths: Sequence[Path], channels: int, size: int) -> torch.Tensor:
    """uint8 (N, channels, size, size) of every file; images of another size are resized (short side) and
    centre-cropped, as evaluation transforms do."""
    check_image_size(size)
    fit = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])
    out = torch.empty((len(paths), channels, size, size), dtype=torch.uint8)
    for i, path in enumerate(paths):
        img = decode(path, channels)
        out[i] = img if img.shape[-2:] == (size, size) else fit(img)
    return out


def image_transform(train: bool, size: int = 224, resize: int = 256, jitter: float = 0.4,
                    mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                    augment: str = "imagenet") -> Callable:
    """Eval: resize (short side) + centre crop. Train, by `augment`: imagenet = RandomResizedCrop(size), flip,
    colour jitter (OLTR's ImageNet-LT recipe); cifar = the eval crop, then random crop with size/8 padding and
    flip; none = the eval crop."""
    check_image_size(size)
    fit = [v2.Resize(resize, antialias=True), v2.CenterCrop(size)]
    if not train or augment == "none":
        steps = fit
    elif augment == "cifar":
        steps = [*fit, v2.RandomCrop(size, padding=max(1, size // 8)), v2.RandomHorizontalFlip()]
    else:
        steps = [v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()]
        if jitter > 0:  # saturation needs colour: grayscale images get brightness and contrast only
            sat = jitter if len(mean) == 3 else 0
            steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=sat, hue=0))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)


class ImageListDataset(Dataset):
    """(image, label) pairs read from files under `root`; `targets` holds the labels for class counts."""

    def __init__(self, root: Path, items: list[tuple[str, int]], transform: Callable | None = None,
                 channels: int = 3):
        self.root = Path(root)
        self.paths = [p for p, _ in items]
        self.targets = torch.as_tensor([label for _, label in items], dtype=torch.long)
        self.transform = transform
        self.channels = channels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        img = decode(self.root / self.paths[i], self.channels)
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.targets[i])

    def subset(self, idx: torch.Tensor, transform: Callable | None = None) -> "ImageListDataset":
        """The items at `idx` (in that order), with another transform if given."""
        items = [(self.paths[int(i)], int(self.targets[int(i)])) for i in idx]
        return ImageListDataset(self.root, items, self.transform if transform is None else transform, self.channels)


def scan_image_folder(folder: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Class per sub-folder (sorted names -> labels 0..C-1); returns (class names, [(relative path, label)])."""
    if not folder.is_dir():
        raise DataError(f"image folder {folder} is missing")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"image folder {folder} has no class sub-folders (expected {folder}/<class>/<image>)")
    items = []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DataError(f"class folder {folder / name} is empty: no image ({', '.join(IMAGE_EXTENSIONS)}) in it "
                            "or below it; add its images, or remove the folder if it is not a class")
        items += [(str(p.relative_to(folder)), label) for p in files]
    return classes, items
