"""ResNet-10 for ImageNet-LT (Liu et al. 2019; paper Table 5): torchvision's ResNet with BasicBlock
layers [1, 1, 1, 1], a 512-d feature and a linear classifier, trained from scratch."""
from __future__ import annotations

from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet


def resnet10(num_classes: int = 1000, in_channels: int = 3, layers=(1, 1, 1, 1), **kw) -> ResNet:
    """torchvision ResNet(BasicBlock, [1, 1, 1, 1]); a non-RGB input replaces the 7x7 stem's input channels."""
    model = ResNet(BasicBlock, list(layers), num_classes=num_classes, **kw)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model
