"""EGTEA: split files, the subject-based validation, TSN segment sampling, clip tensors, majority groups."""
from __future__ import annotations

import pytest
import torch

from cdb.data import build_dataset
from cdb.data.egtea import KINETICS_MEAN, normalize_clip, segment_indices
from cdb.core.errors import ConfigError, DataError
from helpers.datasets import write_egtea


def clip(subject: str, k: int) -> str:
    return f"{subject}-R01-PastaSalad-{1000 * k}-{1000 * k + 500}-F{k:06d}-F{k + 10:06d}"


# verb counts in train (subjects outside P20-P26): verb 3 x4, verbs 1, 2 x3, verbs 4-7 x2, 8-19 x1 ...
TRAIN = ([(clip("P01", i), 3, 0) for i in range(4)] + [(clip("P02", i), v, 0) for v in (1, 2) for i in range(3)]
         + [(clip("P03", 10 * v + i), v, 0) for v in (4, 5, 6, 7) for i in range(2)]
         + [(clip("P04", v), v, 0) for v in range(8, 20)]
         + [(clip("P20", 1), 1, 0), (clip("P26", 2), 19, 0), (clip("P27", 3), 5, 0)])
TEST = [(clip("P05", 1), 2, 0), (clip("P06", 2), 19, 7)]


@pytest.fixture(scope="module")
def egtea_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("egtea")
    write_egtea(root, {"train": TRAIN, "test": TEST}, frames_per_clip=12, size=(24, 32))
    return root


def build(root, **kw):
    kw = {"image_size": 16, "resize": 20, **kw}
    return build_dataset("egtea", root=str(root), seed=0, **kw)


def test_segment_indices_by_hand():
    # 20 frames, 10 segments of 2: centres 1, 3, ..., 19; random picks stay inside their segment
    assert segment_indices(20, 10, train=False) == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]
    assert segment_indices(12, 4, train=False) == [1, 4, 7, 10]
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        idx = segment_indices(20, 10, train=True, gen=g)
        assert all(2 * i <= j < 2 * i + 2 for i, j in enumerate(idx))
    # a clip shorter than T repeats frames: centres floor((i + 0.5) * 3 / 10); segments [floor(3i/10), ...)
    assert segment_indices(3, 10, train=False) == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert segment_indices(3, 10, train=True, gen=g) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_splits_validation_by_subject_and_groups(egtea_root):
    d = build(egtea_root)
    assert d.num_classes == 19 and d.input_shape == (10, 3, 16, 16)
    assert len(d.train) == len(TRAIN) - 2 and len(d.val) == 2 and len(d.test) == 2   # P20 and P26 -> val
    assert sorted(d.val.clips) == sorted([clip("P20", 1), clip("P26", 2)])
    assert d.val.targets.tolist() == [0, 18]              # 1-based verbs in the file, 0-based labels
    counts = d.class_counts.tolist()
    assert counts[2] == 4 and counts[0] == 3 and counts[1] == 3 and counts[4] == 3  # verb 5: 2 + the P27 clip
    # the 5 most frequent training verbs (ties broken by label): 3, 1, 2, 5, then 4 (2 clips, lowest label)
    assert d.info["groups"]["majority"] == [0, 1, 2, 3, 4]
    assert d.info["groups"]["minority"] == list(range(5, 19))
    assert d.class_names[0] == "Verb 1"


def test_clip_tensor_and_frames_read(egtea_root):
    d = build(egtea_root, normalize="imagenet")
    paths = d.test.frame_paths(0)   # 12 frames, 10 segments of 1.2: centres floor((i + 0.5) * 1.2), 1-based names
    assert [int(p.stem.split("_")[1]) for p in paths] == [1, 2, 4, 5, 6, 7, 8, 10, 11, 12]
    x, y = d.test[1]
    assert x.shape == (10, 3, 16, 16) and x.dtype == torch.float32 and y == 18
    x_train, _ = d.train[0]
    assert x_train.shape == (10, 3, 16, 16)


def test_kinetics_normalisation_matches_pretrained_convention(egtea_root):
    raw = torch.full((2, 3, 4, 4), 200, dtype=torch.uint8)
    out = normalize_clip(raw, "kinetics")                 # RGB 0-255 minus [114.77, 107.74, 99.48], no std
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([200 - 114.7748, 200 - 107.7354, 200 - 99.4750]))
    rgb = torch.zeros(1, 3, 1, 1, dtype=torch.uint8)
    rgb[0, 0] = 255
    assert normalize_clip(rgb, "authors")[0, :, 0, 0].tolist() == [0, 0, 255]   # BGR, 0-255
    # through the dataset: a centre frame k has channel 1 == 10 k (JPEG: within a few levels)
    d = build(egtea_root)
    x, _ = d.test[0]
    k = 1                                                 # the first centre frame of 12 (see above)
    assert abs(float(x[0, 1].mean()) - (10 * k - KINETICS_MEAN[1])) < 4


def test_explicit_val_list_and_errors(egtea_root, tmp_path):
    ann = egtea_root / "EGTEA" / "action_annotation"
    (ann / "val_split.txt").write_text(f"{clip('P01', 0)} 3 3 1\n")
    d = build(egtea_root, val_list="action_annotation/val_split.txt")
    assert len(d.train) == len(TRAIN) and d.val.clips == [clip("P01", 0)]
    with pytest.raises(DataError, match=r"train_split1.txt is missing.*extract_frames"):
        build(tmp_path)
    with pytest.raises(ConfigError, match="dataset.normalize"):
        build(egtea_root, normalize="bgr")
    with pytest.raises(DataError, match="verb 19, outside 1..18"):
        build(egtea_root, num_classes=18)
    with pytest.raises(DataError, match="frame folder .* is missing"):
        build(egtea_root, clip_path="{video}/{clip}")


def test_authors_frame_layout(tmp_path):
    # the authors' layout: frames/<video>/<clip>/000000.jpg ... (0-based, 6 digits)
    write_egtea(tmp_path, {"train": [(clip("P01", 1), 1, 3), (clip("P21", 1), 2, 3)],
                           "test": [(clip("P02", 1), 2, 3)]}, size=(16, 16))
    frames = tmp_path / "EGTEA" / "frames"
    for c in (clip("P01", 1), clip("P21", 1), clip("P02", 1)):
        video = "-".join(c.split("-")[:3])
        (frames / video).mkdir(exist_ok=True)
        (frames / c).rename(frames / video / c)
        for k in range(1, 4):
            (frames / video / c / f"img_{k:05d}.jpg").rename(frames / video / c / f"{k - 1:06d}.jpg")
    d = build(tmp_path, clip_path="{video}/{clip}", frame_template="{:06d}.jpg", first_frame=0, image_size=8,
              resize=10)
    assert d.test.frame_paths(0)[0].name == "000000.jpg"
    assert d.test[0][0].shape == (10, 3, 8, 8)
