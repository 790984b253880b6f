"""Model zoo: name in, nn.Module out."""
from __future__ import annotations

from typing import Any

from torch import nn

from ..registry import resolve
from .heads import use_head

MODELS = {
    "lenet5": "cdb.models.lenet:LeNet5",
    "resnet32": "cdb.models.resnet_cifar:resnet32",
    "resnet10": "cdb.models.resnet:resnet10",
    "resnext3d_101": "cdb.models.resnext3d:resnext3d_101",
}


def build_model(name: str, num_classes: int, input_shape: tuple[int, ...], head: str = "linear",
                **kwargs: Any) -> nn.Module:
    """Instantiate the named model for `num_classes` outputs; `input_shape` is (C, H, W) or (T, C, H, W).

    head: "linear" (the model's own classifier) or "cosine" (NormedLinear, which LDAM's loss config selects).
    """
    cls = resolve(MODELS, name, "model.name")
    return use_head(cls(num_classes=num_classes, in_channels=input_shape[-3], **kwargs), head)
