"""Training augmentation does what the protocol says, checked on images whose pixels tell where they came from.

CIFAR (Cui et al. / the paper's recipe): "random crop 32 pad 4, horizontal flip". ImageNet-LT (OLTR):
RandomResizedCrop, horizontal flip, colour jitter 0.4. EGTEA (paper sec. 4.2): "random-cropping, random-rotating
and horizontal-flipping", one draw per clip so the 10 frames stay aligned.
"""
from __future__ import annotations

import pytest
import torch

from cdb.data.augment import crop_flip
from cdb.data.egtea import clip_transform
from cdb.data.images import IMAGENET_MEAN, IMAGENET_STD, image_transform

torch.set_num_threads(1)


def coded_image(h: int = 32, w: int = 32) -> torch.Tensor:
    """uint8 (3, h, w): channel 0 = row + 1, channel 1 = column + 1, channel 2 = 200; zero padding is all 0."""
    img = torch.empty(3, h, w, dtype=torch.uint8)
    img[0] = (torch.arange(h) + 1).view(h, 1)
    img[1] = (torch.arange(w) + 1).view(1, w)
    img[2] = 200
    return img


def test_cifar_crop_pads_by_4_and_flips_horizontally():
    img = coded_image()
    padded = torch.zeros(3, 40, 40, dtype=torch.uint8)      # zero padding of 4 on every side, by hand
    padded[:, 4:36, 4:36] = img
    candidates = {}
    for dy in range(9):
        for dx in range(9):
            crop = padded[:, dy:dy + 32, dx:dx + 32]
            candidates[crop.numpy().tobytes()] = (dy, dx, False)
            candidates[crop.flip(-1).numpy().tobytes()] = (dy, dx, True)
    out = crop_flip(img.expand(4000, 3, 32, 32).contiguous(), torch.Generator().manual_seed(0))
    assert out.shape == (4000, 3, 32, 32) and out.dtype == torch.uint8
    seen = [candidates.get(o.numpy().tobytes()) for o in out]
    assert None not in seen                                   # every output is a 32x32 window, maybe mirrored
    assert len(set(seen)) == 9 * 9 * 2                        # every shift in -4..4 x -4..4, each both ways
    flipped = sum(s[2] for s in seen) / len(seen)
    assert 0.45 < flipped < 0.55                              # flip with probability 1/2


def test_cifar_dataset_trains_with_crop_flip(tmp_path):
    from cdb.data import build_dataset
    from helpers.datasets import write_cifar100

    write_cifar100(tmp_path, train_per_class=3, test_per_class=1)
    assert build_dataset("cifar_lt", root=str(tmp_path), seed=0, imbalance=1, val_per_class=1).augment == "crop_flip"


def ramp(h: int, w: int) -> torch.Tensor:
    """uint8 (3, h, w): channel 0 rises left to right (0..255), channels 1 and 2 a constant 128."""
    img = torch.full((3, h, w), 128, dtype=torch.uint8)
    img[0] = torch.linspace(0, 255, w).round().to(torch.uint8).view(1, w)
    return img


def left_to_right(x: torch.Tensor) -> float:
    """Mean horizontal slope of channel 0 (positive: not mirrored)."""
    return float((x[..., 0, :, -1] - x[..., 0, :, 0]).mean())


def test_imagenet_lt_train_transform_crops_at_random_scale_flips_and_jitters(tmp_path):
    from cdb.data import build_dataset
    from helpers.datasets import write_imagenet_lt

    write_imagenet_lt(tmp_path, [2, 1], size=12)
    d = build_dataset("imagenet_lt", root=str(tmp_path), seed=0, image_size=16, resize=20)   # jitter 0.4 default
    img = ramp(40, 48)
    torch.manual_seed(0)
    outs = torch.stack([d.train.transform(img) for _ in range(300)])
    assert outs.shape == (300, 3, 16, 16)
    slopes = torch.tensor([left_to_right(o) for o in outs])
    assert 0.35 < float((slopes < 0).float().mean()) < 0.65  # mirrored about half the time
    # RandomResizedCrop: the crop covers a random part of the width; some crops span most of the ramp, some little
    span = slopes.abs() * IMAGENET_STD[0] * 255                # back to 0..255 units
    assert float(span.min()) < 0.5 * 255 < float(span.max())
    # colour jitter 0.4: a constant channel comes out at different levels; without jitter exactly normalised 128
    plain = image_transform(True, 16, 20, jitter=0.0)
    flat = torch.stack([plain(img)[1] for _ in range(20)])
    assert torch.allclose(flat, torch.full_like(flat, (128 / 255 - IMAGENET_MEAN[1]) / IMAGENET_STD[1]), atol=1e-5)
    levels = outs[:, 1].mean(dim=(1, 2))
    assert float(levels.max() - levels.min()) > 0.5            # brightness factors spread over [0.6, 1.4]
    # evaluation: resize 20 + centre crop 16, the same every time, never mirrored
    a, b = d.test.transform(img), d.test.transform(img)
    assert torch.equal(a, b) and left_to_right(a) > 0


@pytest.mark.parametrize("rotation", [0.0, 10.0])
def test_egtea_train_transform_one_draw_per_clip(rotation):
    tf = clip_transform(True, size=24, resize=32, rotation=rotation)
    clip = ramp(32, 40).expand(10, 3, 32, 40).contiguous()   # 10 identical frames
    torch.manual_seed(0)
    outs = [tf(clip) for _ in range(100)]
    assert all(o.shape == (10, 3, 24, 24) for o in outs)
    assert all(torch.equal(o[0], o[t]) for o in outs for t in range(1, 10))   # same crop/rotation/flip per frame
    slopes = torch.tensor([left_to_right(o[0].float()) for o in outs])
    assert 0.3 < float((slopes < 0).float().mean()) < 0.7    # horizontal flip about half the time
    starts = {int(o[0, 0, 12, 12]) for o in outs}
    assert len(starts) > 3                                    # random crop position (or rotation) moves the ramp
    # rotation: the ramp is constant down each column unless rotated (rows of the centre 12x12 differ)
    centre = torch.stack([o[0, 0, 6:18, 6:18].float() for o in outs])
    tilted = (centre.std(dim=1).mean(dim=1) > 1.0).float().mean()
    assert (float(tilted) > 0.5) if rotation else (float(tilted) == 0.0)
    # evaluation: a centre crop, deterministic and unmirrored
    ev = clip_transform(False, size=24, resize=32, rotation=rotation)
    assert torch.equal(ev(clip), ev(clip)) and left_to_right(ev(clip)[0].float()) > 0
