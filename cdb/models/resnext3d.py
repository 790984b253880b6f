"""3D-ResNeXt-101 (Hara et al. 2018, after Xie et al. 2017): the EGTEA model of the paper (Tables 6-7).

Bottleneck blocks with grouped 3x3x3 convolutions (cardinality 32, inner
width cardinality * planes / 32, output 2 * planes for planes 128/256/512/1024),
layers [3, 4, 23, 3], shortcut type B (1x1x1 convolution + BN where the shape
changes), a 7x7x7 stem with stride (1, 2, 2) and a 3x3x3 max-pool with stride 2.
Global average pooling replaces Hara et al.'s fixed-size AvgPool3d, so any clip
length and size works (it is the same operation at their 16x112x112).

Input: the egtea dataset yields clips as (T, C, H, W), so batches are
(B, T, C, H, W); the model permutes them to Conv3d's (B, C, T, H, W)
(input_layout="btchw"; "bcthw" takes Conv3d's layout as is).
Pretrained weights: `pretrained=<path>` loads a Kinetics checkpoint such as
Hara et al.'s resnext-101-kinetics.pth (see load_pretrained). Those weights
expect RGB frames in 0-255 minus the mean [114.77, 107.74, 99.48] with no std
division: the egtea dataset's default normalize="kinetics" produces exactly that.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cdb.core.errors import DataError, check

EXPANSION = 2


class Bottleneck(nn.Module):
    """1x1x1 reduce - grouped 3x3x3 (stride) - 1x1x1 expand, each with BN; ReLU after the sum."""

    def __init__(self, cin: int, planes: int, cardinality: int, stride: int = 1):
        super().__init__()
        mid = cardinality * (planes // 32)
        cout = planes * EXPANSION
        self.conv1 = nn.Conv3d(cin, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(mid)
        self.conv2 = nn.Conv3d(mid, mid, 3, stride, 1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm3d(mid)
        self.conv3 = nn.Conv3d(mid, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:  # shortcut B: projection only where the shape changes
            self.downsample = nn.Sequential(nn.Conv3d(cin, cout, 1, stride, bias=False), nn.BatchNorm3d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNeXt3D(nn.Module):
    """Stem - 4 stages of bottlenecks (strides 1, 2, 2, 2 in time and space) - global avg pool - fc.

    Module names (conv1, bn1, layer1..4, fc, downsample.0/1) match Hara et al.'s
    so their checkpoints load by name.
    """

    def __init__(self, num_classes: int = 400, in_channels: int = 3, layers=(3, 4, 23, 3), cardinality: int = 32,
                 planes=(128, 256, 512, 1024), stem: int = 64, input_layout: str = "btchw"):
        super().__init__()
        check(input_layout in ("btchw", "bcthw"), "model.input_layout", input_layout, "btchw or bcthw")
        check(all(p % 32 == 0 for p in planes), "model.planes", list(planes), "multiples of 32")
        self.input_layout = input_layout
        self.conv1 = nn.Conv3d(in_channels, stem, 7, (1, 2, 2), 3, bias=False)
        self.bn1 = nn.BatchNorm3d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(3, 2, 1)
        cin = stem
        for i, (n, p) in enumerate(zip(layers, planes)):
            blocks = []
            for b in range(n):
                blocks.append(Bottleneck(cin, p, cardinality, 2 if (i > 0 and b == 0) else 1))
                cin = p * EXPANSION
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        if self.input_layout == "btchw":
            x = x.permute(0, 2, 1, 3, 4)  # (B, T, C, H, W) from the dataset -> (B, C, T, H, W)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def require_checkpoint(path: str | Path) -> Path:
    """The checkpoint's path, or a DataError that says where the Kinetics weights come from."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"pretrained checkpoint {path} is missing. Hara et al.'s Kinetics weights "
                        "(resnext-101-kinetics.pth) are linked from https://github.com/kenshohara/3D-ResNets-PyTorch; "
                        "put the file there, set model.pretrained to its path, or model.pretrained=null to "
                        "train from scratch.")
    return path


def load_pretrained(model: ResNeXt3D, path: str | Path) -> dict:
    """Load a (Kinetics) checkpoint into `model`, keeping model.fc (the new classifier) as initialised.

    Reads with torch.load(weights_only=True) (no code runs), accepts a bare
    state dict or one under 'state_dict', strips DataParallel's 'module.'
    prefix. Every non-classifier weight must match by name and shape.
    Returns {"loaded": n, "skipped": [classifier keys]}.
    """
    path = require_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or corrupt file
        raise DataError(f"cannot read pretrained checkpoint {path}: {type(exc).__name__}: {exc}") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise DataError(f"pretrained checkpoint {path} holds no state dict")
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    own = model.state_dict()
    skipped = sorted(k for k in state if k.startswith("fc."))
    weights = {k: v for k, v in state.items() if not k.startswith("fc.")}
    wrong = [k for k, v in weights.items() if k not in own or own[k].shape != v.shape]
    missing = [k for k in own if not k.startswith("fc.") and k not in weights and not k.endswith("num_batches_tracked")]
    if wrong or missing:
        what = f"unexpected or mis-shaped '{wrong[0]}'" if wrong else f"no '{missing[0]}'"
        raise DataError(f"pretrained checkpoint {path} does not fit this model ({what}); it must be a "
                        "3D-ResNeXt-101 (cardinality 32, shortcut B) checkpoint")
    model.load_state_dict(weights, strict=False)
    return {"loaded": len(weights), "skipped": skipped}


def resnext3d_101(num_classes: int = 400, in_channels: int = 3, pretrained: str | None = None, **kw) -> ResNeXt3D:
    """3D-ResNeXt-101 (layers [3, 4, 23, 3], cardinality 32); `pretrained` = checkpoint path or None.

    Keyword overrides (layers, planes, cardinality, stem) build smaller
    variants of the same architecture, e.g. for quick tests.
    """
    if pretrained:
        require_checkpoint(pretrained)  # fail before building 48M parameters
    model = ResNeXt3D(num_classes, in_channels, **kw)
    if pretrained:
        load_pretrained(model, pretrained)
    return model
