"""Long-tailed CIFAR-100 / CIFAR-10 (paper sec. 4.1, following Cui et al. 2019).

Validation: `val_per_class` images of every class held out from the training
split (paper: 50, random, seeded). Train: of the rest (450 per class for
CIFAR-100, 4950 for CIFAR-10), class c keeps floor(n_max * mu**c),
mu = (1/imbalance)**(1/(C-1)), classes in label order. Test: the original
balanced test split. Images stay in memory as uint8 tensors; training batches
get random crop (pad 4) + horizontal flip and CIFAR mean/std, in bulk.

split="random" is the paper (random val draw, random subset kept);
split="file" is the authors' code: validation = the last `val_per_class`
images of each class in file order (they used 25) and the first n_c of the
rest kept, unshuffled. The authors also normalised training images with
ImageNet mean/std but test images with CIFAR's; that mismatch is not offered.
"""
from __future__ import annotations

import codecs
import functools
import pickle
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

from cdb.core.errors import DataError, check, is_number
from cdb.data.base import DatasetSplits, TensorSplit
from cdb.data.longtail import carve_per_class, longtail_counts, take_first

# torchvision's folder and file names for the python-pickle release of CIFAR
LAYOUT = {
    100: {"folder": "cifar-100-python", "train": ["train"], "test": ["test"], "meta": "meta",
          "labels": "fine_labels", "names": "fine_label_names"},
    10: {"folder": "cifar-10-batches-py", "train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"],
         "meta": "batches.meta", "labels": "labels", "names": "label_names"},
}
# per-channel statistics of the CIFAR training images (commonly used values, [0, 1] units)
STATS = {
    100: ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    10: ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays: a CIFAR file cannot run code when loaded."""

    def find_class(self, module, name):
        if (module, name) in (("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")):
            return _reconstruct
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):
            return codecs.encode
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR file (only numpy arrays)")


def _load(path: Path) -> dict:
    """One CIFAR pickle as a dict; a truncated, foreign or hostile file is a one-line DataError naming it."""
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="latin1").load()
        return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}
    except OSError:
        raise
    except Exception as exc:  # the unpickler runs no code, so any failure means a damaged or foreign file
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path} is not a CIFAR python pickle ({type(exc).__name__}: {detail}); replace it with "
                        "a fresh copy of the python version from https://www.cs.toronto.edu/~kriz/cifar.html") from None


def _how_to_get(classes: int, path: Path) -> str:
    folder = LAYOUT[classes]["folder"]
    return (f"Download the python version of CIFAR-{classes} from https://www.cs.toronto.edu/~kriz/cifar.html and "
            f"unpack it so that {path / folder} exists, set data_root (or CDB_DATA_ROOT) to the folder that holds "
            f"{folder}/, or pass dataset.download=true on a machine with internet.")


@functools.lru_cache(maxsize=2)
def load_cifar(root: str, classes: int = 100, download: bool = False):
    """((x_train, y_train), (x_test, y_test), class_names): uint8 (N, 3, 32, 32) and int64 labels."""
    lay = LAYOUT[classes]
    path = Path(root).expanduser()
    folder = path / lay["folder"]
    files = [folder / f for f in (*lay["train"], *lay["test"], lay["meta"])]
    if download and not all(f.exists() for f in files):
        try:
            (CIFAR100 if classes == 100 else CIFAR10)(str(path), train=True, download=True)
        except Exception as exc:  # no network, proxy, disk full, ...
            raise DataError(f"CIFAR-{classes} is not in {folder} and downloading it failed "
                            f"({type(exc).__name__}: {exc}). " + _how_to_get(classes, path)) from None
    for f in files:
        if not f.exists():
            raise DataError(f"CIFAR-{classes} file {f} is missing. " + _how_to_get(classes, path))

    def split(names):
        xs, ys = [], []
        for n in names:
            try:
                d = _load(folder / n)
                xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(d[lay["labels"]], dtype=np.int64))
            except (KeyError, ValueError, TypeError) as exc:
                raise DataError(f"{folder / n} is not a CIFAR-{classes} python pickle ({exc}). "
                                + _how_to_get(classes, path)) from None
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    names = [str(n) for n in _load(folder / lay["meta"])[lay["names"]]]
    return split(lay["train"]), split(lay["test"]), names


def build_cifar_lt(root: str, seed: int = 0, classes: int = 100, imbalance: float = 100, val_per_class: int = 50,
                   split: str = "random", download: bool = False) -> DatasetSplits:
    check(classes in LAYOUT, "dataset.classes", classes, "100 (CIFAR-100) or 10 (CIFAR-10)")
    check(isinstance(val_per_class, int) and val_per_class >= 1, "dataset.val_per_class", val_per_class,
          "an integer >= 1")
    check(is_number(imbalance) and imbalance >= 1, "imbalance", imbalance, "a number >= 1 (the paper uses 200, 100, 50, 20, 10; 1 = balanced)")
    (x, y), (x_test, y_test), names = load_cifar(str(root), int(classes), bool(download))
    check(len(names) == classes, "dataset.classes", classes, f"the meta file lists {len(names)} classes")
    order = {"random": "random", "authors": "file"}.get(split)
    check(order is not None, "dataset.split", split, "random (paper) or authors (last val_per_class held out, "
                                                     "first n_c kept, file order)")
    rest, val = carve_per_class(y, classes, val_per_class, seed, order, names)
    # Every class has the same number left (CIFAR is balanced); the profile starts from the smallest.
    n_max = min(len(r) for r in rest)
    counts = longtail_counts(n_max, classes, imbalance)
    train_idx = take_first(rest, counts, names)
    val_idx = torch.cat(val)
    mean, std = STATS[classes]
    return DatasetSplits(
        name="cifar_lt",
        train=TensorSplit(x[train_idx].contiguous(), y[train_idx].clone()),
        val=TensorSplit(x[val_idx].contiguous(), y[val_idx].clone()),
        test=TensorSplit(x_test, y_test),
        num_classes=classes,
        class_names=names,
        input_shape=(3, 32, 32),
        mean=mean,
        std=std,
        augment="crop_flip",
        info={"imbalance": imbalance, "n_max": n_max, "split": split, "val_per_class": val_per_class,
              "train_indices": {"train": train_idx.tolist(), "val": val_idx.tolist()}},
    )
