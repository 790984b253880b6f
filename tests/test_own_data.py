"""Your own data end to end: folders of real MNIST digits (PNG files written from the idx files) through
dataset=folder, at 99:1 for two classes and at imbalance 100 for ten; counts checked against the
profile computed here by hand, the head class, channels, thresholds, the metrics keys and the dry run."""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from cdb.data import build_dataset
from cdb.core.errors import ConfigError, DataError
from conftest import REPO, cdb_run, compose

RAW = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TWO = {"4": 40, "9": 600}                                 # training PNGs per class; 20 test PNGs each
TEN = {str(d): (130 if d == 3 else 70) for d in range(10)}  # digit 3 is the largest class, not the first folder
VAL = 10                                                  # dataset.val_per_class in these tests
STEPS = ["trainer.unit=step", "trainer.length=2", "trainer.eval_every=1", "trainer.progress=false", "threads=1",
         "trainer.device=cpu"]


def read_idx(path: Path) -> np.ndarray:
    """An idx file (MNIST's format): magic (2 zero bytes, type 0x08 = uint8, ndim), ndim big-endian sizes, data."""
    raw = path.read_bytes()
    assert raw[:3] == b"\x00\x00\x08", path
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4: 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_digits(root: Path, images: dict, per_class: dict[str, int], test_per_class: int = 20) -> Path:
    """root/{train,test}/<digit>/<index>.png, grayscale 28x28, the first images of each digit in file order."""
    for split, n_of in (("train", per_class), ("test", {d: test_per_class for d in per_class})):
        x, y = images[split]
        for d, n in n_of.items():
            (root / split / d).mkdir(parents=True, exist_ok=True)
            for i in np.nonzero(y == int(d))[0][:n]:
                Image.fromarray(x[i], mode="L").save(root / split / d / f"{i:05d}.png")
    return root


@pytest.fixture(scope="module")
def digits(tmp_path_factory, mnist_dir):
    raw = mnist_dir / "MNIST" / "raw"
    x_tr, y_tr, x_te, y_te = (read_idx(raw / f) for f in RAW)
    images = {"train": (x_tr, y_tr), "test": (x_te, y_te)}
    root = tmp_path_factory.mktemp("own_data")
    write_digits(root / "two", images, TWO)
    write_digits(root / "ten", images, TEN, test_per_class=10)
    return root


def build(root: Path, name: str, **kw):
    return build_dataset("folder", root=str(root), seed=0, path=name, val_per_class=VAL, **kw)



def groups_by_name(d) -> dict[str, set[str]]:
    return {k: {d.class_names[c] for c in v} for k, v in d.info["groups"].items() if k != "thresholds"}


# ---- expected values, computed here from the protocol's rules ------------------------------------------
def majority_split(head: int, tail: int, r: float) -> tuple[int, int]:
    """MNIST 4/9's rule: N images, round(N r) of the head class; the largest N the folder allows."""
    best = None
    for n in range(1, head + tail + 1):
        h = int(round(n * r))
        if h <= head and n - h <= tail and n - h >= 1:
            best = (h, n - h)
    return best


def longtail_by_rank(available: list[int], imbalance: float) -> list[int]:
    """floor(n_max * mu**r), mu = (1/imbalance)**(1/(C-1)), with the largest n_max every class can supply."""
    c = len(available)
    for n_max in range(available[0], 0, -1):
        counts = [math.floor(n_max * (1 / imbalance) ** (r / (c - 1))) for r in range(c)]
        if all(k <= a for k, a in zip(counts, available)):
            return counts
    raise AssertionError("no profile fits")


def test_two_classes_at_99_to_1_like_mnist(digits):
    d = build(digits, "two", majority_ratio=0.99)
    # after 10 validation images each: 30 fours, 590 nines. Nines are the largest class, so the head, although
    # "4" is the first folder. N = 596 is the largest N with round(0.99 N) <= 590: 590 nines and 6 fours.
    assert majority_split(590, 30, 0.99) == (590, 6)
    assert d.class_names == ["4", "9"] and d.info["head"] == "9"
    assert d.class_counts.tolist() == [6, 590]
    assert d.input_shape == (1, 28, 28) and d.train.x.shape[1:] == (1, 28, 28)        # grayscale stays 1 channel
    assert d.info["augment"] == "none" and d.augment == "none"                         # no flips of digits
    # mean/std measured on the kept training images
    x = d.train.x.double() / 255
    assert d.mean[0] == pytest.approx(float(x.mean())) and d.std[0] == pytest.approx(float(x.std()), rel=1e-6)
    # terciles of (6, 590): 1/3 quantile 6 + 584/3 = 200.7, 2/3 quantile 395.3 -> one many- and one few-shot class
    assert d.info["groups"]["thresholds"]["few_below"] == 201 and d.info["groups"]["thresholds"]["many_above"] == 395
    assert groups_by_name(d) == {"many": {"9"}, "medium": set(), "few": {"4"}}


def test_head_class_order_and_errors(digits):
    # fours first: 30 available cannot give 99 % of a split with at least one nine
    with pytest.raises(DataError, match="majority_ratio=0.99"):
        build(digits, "two", majority_ratio=0.99, class_order=["4", "9"])
    d = build(digits, "two", majority_ratio=0.6, class_order=["4", "9"])
    assert majority_split(30, 590, 0.6) == (30, 20)                                  # N = 50
    assert d.info["head"] == "4" and d.class_counts.tolist() == [30, 20]
    with pytest.raises(ConfigError, match="dataset.class_order"):
        build(digits, "two", imbalance=10, class_order=["4", "7"])
    with pytest.raises(ConfigError, match="only for two classes"):
        build(digits, "ten", majority_ratio=0.99)
    with pytest.raises(ConfigError, match="dataset.channels"):
        build(digits, "two", channels=2)
    assert build(digits, "two", channels=3).input_shape == (3, 28, 28)


def test_ten_classes_at_imbalance_100(digits):
    d = build(digits, "ten", imbalance=100, image_size=32)
    # available after validation: digit 3 120, the others 60. Head first by size: 3, then 0, 1, 2, 4, ... 9
    ranked = longtail_by_rank([120] + [60] * 9, 100)
    assert ranked == [101, 60, 36, 21, 13, 7, 4, 2, 1, 1]                               # n_max = 101
    order = ["3", "0", "1", "2", "4", "5", "6", "7", "8", "9"]
    assert d.info["head"] == "3" and d.info["class_order"] == order
    assert dict(zip(d.class_names, d.class_counts.tolist())) == dict(zip(order, ranked))
    assert d.input_shape == (1, 32, 32) and d.train.x.shape[1:] == (1, 32, 32)       # resized from 28
    assert d.info["augment"] == "none"                                    # grayscale up to 32 px: as MNIST
    rgb = build(digits, "ten", imbalance=100, image_size=32, channels=3)
    assert rgb.input_shape == (3, 32, 32) and rgb.info["augment"] == "cifar" and rgb.augment == "crop_flip"
    # sorted counts 1 1 2 4 7 13 21 36 60 101: 1/3 quantile 4, 2/3 quantile 21
    assert (d.info["groups"]["thresholds"]["few_below"], d.info["groups"]["thresholds"]["many_above"]) == (4, 21)
    assert groups_by_name(d) == {"many": {"3", "0", "1"}, "medium": {"2", "4", "5", "6"}, "few": {"7", "8", "9"}}
    given = build(digits, "ten", imbalance=100, many_above=50, few_below=5)
    assert groups_by_name(given) == {"many": {"3", "0"}, "medium": {"1", "2", "4", "5"}, "few": {"6", "7", "8", "9"}}


def test_lenet5_run_at_99_to_1(digits, tmp_path):
    res = cdb_run(tmp_path, "dataset=folder", "dataset.path=two", f"dataset.val_per_class={VAL}",
                  "dataset.majority_ratio=0.99", "loss=cdb", *STEPS, data=digits)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = [p.parent for p in tmp_path.rglob("metrics.json")]
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["name"] == "lenet5" and cfg["auto_choices"]["model"] == "lenet5"
    assert cfg["auto_choices"]["trainer"] == "small_folder" and cfg["trainer"]["num_workers"] == 0
    assert cfg["trainer"]["length"] == 2 and cfg["trainer"]["batch_size"] == 64     # yours kept, the rest filled
    assert "chose model=lenet5, trainer=small_folder" in (run / "run.log").read_text()
    data = json.loads((run / "data.json").read_text())
    assert data["channels"] == 1 and data["head"] == "9" and data["train_class_counts"] == [6, 590]
    m = json.loads((run / "metrics.json").read_text())
    keys = set(m["test"])
    assert {"many_accuracy", "many_recall", "few_accuracy", "few_recall", "group_thresholds"} <= keys
    assert not any(k.startswith("medium_") for k in keys)                   # no class between the thresholds
    assert m["test"]["group_thresholds"]["rule"] == "terciles of the training counts"
    assert m["test"]["group_classes"] == {"many": [1], "medium": [], "few": [0]}


def test_resnet32_run_at_imbalance_100(digits, tmp_path):
    res = cdb_run(tmp_path, "dataset=folder", "dataset.path=ten", f"dataset.val_per_class={VAL}",
                  "imbalance=100", "dataset.image_size=32", "model=resnet32", "loss=ce", *STEPS, data=digits)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = [p.parent for p in tmp_path.rglob("metrics.json")]
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["name"] == "resnet32" and cfg["auto_choices"] == {
        "trainer": "small_folder", "because": "32x32 images, 1 channel"}       # your model=, only the trainer chosen
    assert cfg["dataset"]["imbalance"] == 100
    m = json.loads((run / "metrics.json").read_text())
    assert m["train_class_counts"] == [60, 36, 21, 101, 13, 7, 4, 2, 1, 1]
    assert {"many_accuracy", "medium_accuracy", "few_accuracy"} <= set(m["test"])
    assert len(m["test"]["per_class_accuracy"]) == 10 and m["test"]["n"] == 100


def test_a_sweep_over_a_folder_runs_through_the_pack_launcher(digits, tmp_path):
    # trainer=auto leaves trainer.device null until each run is built; the launcher once read it as "None"
    res = cdb_run(tmp_path, "-m", "dataset=folder", "dataset.path=two", f"dataset.val_per_class={VAL}",
                  "dataset.majority_ratio=0.99", "loss=ce,cdb", *STEPS, data=digits)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "sweep: 2 ok, 0 failed" in res.stderr
    losses = [yaml.safe_load((p.parent / "config.yaml").read_text())["loss"]["name"]
              for p in tmp_path.rglob("metrics.json")]
    assert sorted(losses) == ["cdb", "ce"]


def test_dry_run_prints_counts_and_writes_nothing(digits, tmp_path):
    out = tmp_path / "out"                                # where cdb_run puts runs
    res = cdb_run(tmp_path, "dataset=folder", "dataset.path=two", f"dataset.val_per_class={VAL}",
                  "dataset.majority_ratio=0.99", "dry_run=true", data=digits)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines() if line.split()}
    assert rows["4"] == ["6", "10", "20"] and rows["9"] == ["590", "10", "20"]        # train, val, test
    assert rows["total"] == ["596", "20", "40"]
    assert "head class: 9" in res.stdout and "1 channel, 28x28" in res.stdout
    assert "model: lenet5" in res.stdout and "small_folder" in res.stdout
    assert not out.exists() and not (REPO / ".hydra").exists()
    bad = cdb_run(tmp_path, "dataset=folder", "dataset.path=ten", "dataset.majority_ratio=0.99", "dry_run=true",
                  data=digits)
    assert bad.returncode == 2 and bad.stderr.startswith("cdb-run: error: dataset.majority_ratio=0.99")
    assert len(bad.stderr.strip().splitlines()) == 1 and not out.exists()


def test_folder_config_keeps_class_sizes_unless_imbalance_is_given():
    cfg = compose(["dataset=folder", "dataset.path=x"])
    assert cfg.imbalance is None and cfg.dataset.imbalance is None      # not the top-level default of 100
    assert cfg.model.name == "auto" and cfg.trainer.lr is None          # chosen once the images are known
    cfg = compose(["dataset=folder", "dataset.path=x", "imbalance=50", "trainer.lr=0.05"])
    assert cfg.dataset.imbalance == 50 and cfg.trainer.lr == 0.05


def test_oltr_thresholds_from_100_classes_spanning_them():
    from cdb.core.metrics import shot_thresholds

    spanning = [1280] + [50] * 98 + [5]
    assert shot_thresholds(spanning) == {"many_above": 100, "few_below": 20,
                                         "rule": "OLTR (>= 100 classes spanning both thresholds)"}
    # 100 classes all below 100 images: OLTR's thresholds would make every class medium or few, so terciles
    small = list(range(1, 101))            # 1..100: 1/3 quantile 1 + 99/3 = 34, 2/3 quantile 67
    assert shot_thresholds(small)["few_below"] == 34 and shot_thresholds(small)["many_above"] == 67
