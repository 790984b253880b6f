"""The "simple LeNet" of Ren et al. 2018 (learning to reweight examples), the MNIST network of the setup the
paper says it copies (sec. 4.1-4.2: "exactly same as given in [29]").

Read from their public MNIST code (docs/protocol.md): three 5x5 convolutions with 16, 32 and 64 channels and
SAME padding, each followed by a 3x3 max-pool of stride 2 with SAME padding and then ReLU (28 -> 14 -> 7 -> 4),
then a fully connected 1024 -> 100 (ReLU) -> output layer. Weights are drawn from a normal of std 0.1 truncated
at two standard deviations (TensorFlow's truncated_normal), biases are 0.

Their network has one sigmoid output for two classes; this one has `num_classes` softmax outputs. For two
classes a softmax over (z0, z1) is the sigmoid of z1 - z0, so both are the same function class; the softmax form
is kept because every loss here (CDB, IFW, CB, focal, EQL, L2RW) is written for class logits, and it works for
any number of classes. The parameter count for 2 classes is therefore 167,214 (one output more than theirs).
"""
from __future__ import annotations

import math

from torch import nn

from cdb.core.errors import ConfigError

INIT_STD = 0.1


def same_pool_padding(size: int, kernel: int = 3, stride: int = 2) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's SAME max-pool along one axis: output ceil(size / stride), the
    extra pixel (if any) after, as TensorFlow places it."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pool(size: int) -> tuple[list[nn.Module], int]:
    """SAME 3x3/2 max-pool; the new side. PyTorch's pool pads with -inf (never the maximum): `lo` on both sides,
    and ceil_mode adds the one pixel after that an even side needs (hi = lo + 1). This is the same function, values
    and gradients, as an explicit -inf padding of (lo, hi) followed by an unpadded pool, without writing a padded
    copy of the map (5 % of a step). The Identity stands where that padding layer stood, so the layer indices, and
    the keys of checkpoints written before, stay as they were."""
    lo, hi = same_pool_padding(size)
    assert hi - lo in (0, 1), (lo, hi)
    return [nn.Identity(), nn.MaxPool2d(3, 2, padding=lo, ceil_mode=True)], math.ceil(size / 2)


class LeNetRen(nn.Module):
    """conv 16 - pool - conv 32 - pool - conv 64 - pool (5x5 SAME, 3x3/2 SAME pools, ReLU after each pool) -
    fc 100 - fc classes. As in LeNet5, ReLU follows the pool (they commute: ReLU is monotone)."""

    def __init__(self, num_classes: int = 2, in_channels: int = 1, input_size: int = 28):
        super().__init__()
        if not 8 <= input_size <= 64:
            raise ConfigError(f"model=lenet_ren takes images of 8 to 64 pixels (28x28 as in Ren et al.), not "
                              f"{input_size}x{input_size}: set dataset.image_size, or use model=resnet32")
        layers: list[nn.Module] = []
        side, channels = input_size, in_channels
        for width in (16, 32, 64):
            pool, side = _pool(side)
            layers += [nn.Conv2d(channels, width, 5, padding=2), *pool, nn.ReLU(inplace=True)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * side * side, 100), nn.ReLU(inplace=True),
            nn.Linear(100, num_classes),
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.features(x))
