"""CIFAR ResNet (He et al. 2016, sec. 4.2): 3 stages of n basic blocks, widths 16/32/64, 6n+2 layers.

ResNet-32 is n = 5 (0.46M parameters for 10 classes), the model of the
paper's CIFAR experiments (following Cui et al. 2019). Shortcuts that change
shape are parameter-free (He et al.'s option A: subsample by 2 and zero-pad
the new channels), which is what keeps ResNet-32 at 0.46M.

Every shape-changing step of `forward` is a parameter-free leaf module (`ZeroPadShortcut`, the average pool,
the flatten), so that cdb.models.packed can fuse K of these networks into one (each leaf has a packed form);
the functions computed, the parameter names and the initialisation (the random draws, in order) are those of
the plain functional form.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ZeroPadShortcut(nn.Module):
    """Option A: keep every `stride`-th pixel and zero-pad `pad` new channels (pad // 2 before, the rest after)."""

    def __init__(self, stride: int, pad: int):
        super().__init__()
        self.stride, self.pad = stride, pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, pad={self.pad}"


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.pad = stride, cout - cin
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else ZeroPadShortcut(stride, cout - cin)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """conv3x3(16) - 3 stages x `blocks` basic blocks (16, 32, 64; stride 2 at stages 2, 3) - avg pool - fc."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, blocks: int = 5,
                 widths: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages, cin = [], widths[0]
        for i, w in enumerate(widths):
            layers = []
            for b in range(blocks):
                layers.append(BasicBlock(cin, w, 2 if (i > 0 and b == 0) else 1))
                cin = w
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool, self.flatten = nn.AdaptiveAvgPool2d(1), nn.Flatten()
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")  # He et al. init

    def features(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.flatten(self.pool(x))

    def forward(self, x):
        return self.fc(self.features(x))


def resnet32(num_classes: int = 10, in_channels: int = 3, blocks: int = 5, **kw) -> CifarResNet:
    """ResNet-32 (n = 5); `blocks` other than 5 gives other depths (6n+2), e.g. 1 for quick tests."""
    return CifarResNet(num_classes, in_channels, blocks, **kw)
