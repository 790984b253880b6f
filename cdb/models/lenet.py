"""LeNet-5 (LeCun et al. 1998) for 28x28 single-channel input.

The paper trains "a LeNet-5 model ... following [29]" (Ren et al. 2018) and gives no layer sizes; this is
the classic LeNet-5 layout, not a copy of Ren et al.'s network, whose exact layers we have not verified.
"""
from torch import nn

from cdb.core.errors import ConfigError


class LeNet5(nn.Module):
    """conv(6, 5x5, pad 2) - pool - conv(16, 5x5) - pool - fc 120 - fc 84 - fc classes.

    ReLU and max-pooling replace the 1998 tanh and sub-sampling, as in the
    reference implementations of the MNIST imbalance experiments. Each conv
    block runs conv - max-pool - ReLU: max-pooling and ReLU commute (ReLU is
    monotone), so this is the usual conv - ReLU - pool function with the same
    gradients (tests/unit/models/test_lenet5.py checks both against each other), and
    ReLU touches a quarter of the elements. Parameter names are unchanged
    (features.0 and features.3 are the convolutions).
    """

    def __init__(self, num_classes: int = 2, in_channels: int = 1, input_size: int = 28):
        super().__init__()
        side = (input_size // 2 - 4) // 2  # after conv(pad 2) - pool - conv 5x5 - pool: 5 for 28x28, 6 for 32x32
        if side < 1 or input_size > 64:
            raise ConfigError(f"model=lenet5 takes images of 12 to 64 pixels (28x28 as in the paper), not "
                              f"{input_size}x{input_size}: set dataset.image_size, or use model=resnet32 "
                              "(up to 64 px) or model=resnet10 (larger images)")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(inplace=True),
            nn.Conv2d(6, 16, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120), nn.ReLU(inplace=True),
            nn.Linear(120, 84), nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))
