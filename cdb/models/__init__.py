"""Model zoo: name in, nn.Module out; `choose_model` picks one for an input shape (model=auto)."""
from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from cdb.core.errors import ConfigError, check
from cdb.models.heads import use_head
from cdb.models.lenet import LeNet5
from cdb.models.lenet_ren import LeNetRen
from cdb.models.resnet import resnet10
from cdb.models.resnet_cifar import resnet32
from cdb.models.resnext3d import resnext3d_101

MODELS = {"lenet5": LeNet5, "lenet_ren": LeNetRen, "resnet32": resnet32, "resnet10": resnet10,
          "resnext3d_101": resnext3d_101}
VIDEO = {"resnext3d_101"}  # models that take (T, C, H, W) clips; the others take (C, H, W) images


def choose_model(input_shape: tuple[int, ...]) -> str:
    """model=auto: LeNet-5 for grayscale up to 32 px (MNIST-like), ResNet-32 up to 64 px (CIFAR-like),
    ResNet-10 above (ImageNet-like)."""
    channels, size = input_shape[-3], max(input_shape[-2:])
    if len(input_shape) == 4:
        return "resnext3d_101"
    if channels == 1 and size <= 32:
        return "lenet5"
    return "resnet32" if size <= 64 else "resnet10"


def build_model(name: str, num_classes: int, input_shape: tuple[int, ...], head: str = "linear",
                **kwargs: Any) -> nn.Module:
    """Instantiate the named model for `num_classes` outputs; `input_shape` is (C, H, W) or (T, C, H, W).

    Models take the data's channels; a model that needs the image size (LeNet-5's classifier) gets it, and a
    model that cannot take the data says so in one line. head: "linear" (the model's own classifier) or
    "cosine" (NormedLinear, which LDAM's loss config selects).
    """
    check(name in MODELS, "model.name", name, f"one of {sorted(MODELS)}")
    cls = MODELS[name]
    if (len(input_shape) == 4) != (name in VIDEO):
        kind = "video clips (T, C, H, W)" if name in VIDEO else "images (C, H, W)"
        raise ConfigError(f"model={name} takes {kind}, but the dataset gives inputs of shape {tuple(input_shape)}")
    if "input_size" in inspect.signature(cls).parameters:  # the model is built for one image size
        if input_shape[-2] != input_shape[-1]:
            raise ConfigError(f"model={name} takes square images, but the dataset gives "
                              f"{input_shape[-2]}x{input_shape[-1]}")
        kwargs.setdefault("input_size", input_shape[-1])
    return use_head(cls(num_classes=num_classes, in_channels=input_shape[-3], **kwargs), head)
