"""ResNet-32 (CIFAR), ResNet-10 (ImageNet-LT), 3D-ResNeXt-101 (EGTEA): shapes, parameter counts from the
architecture formulas, and the Kinetics checkpoint loader."""
from __future__ import annotations

import pytest
import torch

from cdb.core.errors import DataError
from cdb.models import build_model
from cdb.models.resnext3d import ResNeXt3D, resnext3d_101

torch.set_num_threads(1)


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def bn(c):  # BatchNorm weight + bias
    return 2 * c


def resnet32_params(classes: int) -> int:
    """He et al. 2016 CIFAR ResNet, n = 5, option-A (parameter-free) shortcuts."""
    total = 3 * 16 * 9 + bn(16)
    cin = 16
    for w in (16, 32, 64):
        for _ in range(5):
            total += cin * w * 9 + bn(w) + w * w * 9 + bn(w)
            cin = w
    return total + 64 * classes + classes


def resnet10_params(classes: int) -> int:
    """7x7 stem, BasicBlock x [1, 1, 1, 1] at widths 64..512, 1x1 projection where the shape changes."""
    total = 3 * 64 * 49 + bn(64)
    cin = 64
    for w in (64, 128, 256, 512):
        total += cin * w * 9 + bn(w) + w * w * 9 + bn(w)
        if cin != w:
            total += cin * w + bn(w)
        cin = w
    return total + 512 * classes + classes


def resnext3d_params(classes: int, layers=(3, 4, 23, 3), card=32) -> int:
    """Hara et al.: 7x7x7 stem (64), bottlenecks mid = card * planes / 32 (grouped 3x3x3), out = 2 planes,
    shortcut B (1x1x1 conv + BN) at the first block of each stage."""
    total = 3 * 64 * 343 + bn(64)
    cin = 64
    for n, planes in zip(layers, (128, 256, 512, 1024)):
        mid, out = card * planes // 32, 2 * planes
        for b in range(n):
            total += cin * mid + bn(mid) + (mid // card) * mid * 27 + bn(mid) + mid * out + bn(out)
            if b == 0:
                total += cin * out + bn(out)
            cin = out
    return total + 2048 * classes + classes


def test_resnet32_shape_and_params():
    m = build_model("resnet32", 10, (3, 32, 32))
    assert n_params(m) == resnet32_params(10) == 464_154
    assert round(n_params(m) / 1e6, 2) == 0.46                 # "0.46M" (He et al. 2016, Table 6)
    m100 = build_model("resnet32", 100, (3, 32, 32))
    assert n_params(m100) == resnet32_params(100)
    assert m100(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    assert len([b for s in (m.layer1, m.layer2, m.layer3) for b in s]) * 2 + 2 == 32   # 6n + 2 layers


def test_resnet32_option_a_shortcut_is_zero_padded_subsampling():
    m = build_model("resnet32", 10, (3, 32, 32))
    block = m.layer2[0]
    x = torch.randn(1, 16, 8, 8)
    s = block.shortcut(x)
    assert s.shape == (1, 32, 4, 4)
    assert torch.equal(s[:, 8:24], x[:, :, ::2, ::2]) and not s[:, :8].any() and not s[:, 24:].any()


def test_resnet10_shape_and_params():
    m = build_model("resnet10", 1000, (3, 224, 224))
    assert n_params(m) == resnet10_params(1000)
    assert m.fc.in_features == 512
    m.eval()
    assert m(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
    gray = build_model("resnet10", 5, (1, 64, 64))
    assert gray.conv1.in_channels == 1 and gray(torch.randn(2, 1, 64, 64)).shape == (2, 5)


def test_resnext3d_101_params_and_forward():
    m = resnext3d_101(num_classes=400)
    expected = resnext3d_params(400)
    assert n_params(m) == expected
    backbone = expected - (2048 * 400 + 400)
    assert abs(backbone / 1e6 - 47.5) < 0.1                   # ~47.5M without the 400-way classifier
    m = build_model("resnext3d_101", 19, (10, 3, 224, 224))     # egtea's input_shape is (T, C, H, W)
    assert m.fc.out_features == 19 and m.conv1.in_channels == 3
    m.eval()
    with torch.no_grad():
        assert m(torch.randn(1, 16, 3, 32, 32)).shape == (1, 19)   # (B, T, C, H, W) from the dataset


def test_resnext3d_input_layouts_agree():
    torch.manual_seed(0)
    a = ResNeXt3D(5, 3, layers=(1, 1, 1, 1), planes=(32, 32, 32, 32), cardinality=2, stem=8).eval()
    b = ResNeXt3D(5, 3, layers=(1, 1, 1, 1), planes=(32, 32, 32, 32), cardinality=2, stem=8,
                  input_layout="bcthw").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 10, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(a(x), b(x.permute(0, 2, 1, 3, 4)), atol=1e-5)


class Payload:
    """A pickled object of a user class: torch.load(weights_only=True) must refuse it."""


TINY = dict(layers=(1, 1, 1, 1), planes=(32, 32, 32, 32), cardinality=2, stem=8)


def test_pretrained_loader(tmp_path):
    src = ResNeXt3D(400, 3, **TINY)
    state = {f"module.{k}": v for k, v in src.state_dict().items()}
    path = tmp_path / "kinetics.pth"
    torch.save({"state_dict": state, "arch": "resnext-101", "epoch": 200}, path)
    m = resnext3d_101(num_classes=19, pretrained=str(path), **TINY)
    assert torch.equal(m.conv1.weight, src.conv1.weight)
    assert torch.equal(m.layer4[0].downsample[0].weight, src.layer4[0].downsample[0].weight)
    assert m.fc.weight.shape == (19, 64)                    # classifier replaced, not loaded
    torch.save(src.state_dict(), tmp_path / "bare.pth")     # a bare state dict works too
    bare = resnext3d_101(num_classes=19, pretrained=str(tmp_path / "bare.pth"), **TINY)
    assert torch.equal(bare.conv1.weight, src.conv1.weight)
    assert torch.equal(bare.layer3[0].conv2.weight, src.layer3[0].conv2.weight)
    assert bare.fc.weight.shape == (19, 64)


def test_pretrained_loader_errors(tmp_path):
    with pytest.raises(DataError, match="missing.*3D-ResNets-PyTorch"):
        resnext3d_101(19, pretrained=str(tmp_path / "none.pth"), **TINY)
    other = ResNeXt3D(400, 3, **{**TINY, "stem": 16})
    torch.save(other.state_dict(), tmp_path / "other.pth")
    with pytest.raises(DataError, match="does not fit this model"):
        resnext3d_101(19, pretrained=str(tmp_path / "other.pth"), **TINY)
    torch.save({"state_dict": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(DataError, match="cannot read pretrained checkpoint"):
        resnext3d_101(19, pretrained=str(tmp_path / "evil.pth"), **TINY)
