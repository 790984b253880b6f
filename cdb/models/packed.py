"""K copies of one network fused into one wide network (HFTA-style), so K small runs train as one.

Activations of the convolutional part are laid out (B, K*C, H, W): run k's
batch sits in channel block k (run-major channels). A convolution becomes a
grouped convolution with K groups, BatchNorm2d over the K*C channels
normalises each channel on its own over (B, H, W), and every channel of block k
holds run k's batch only, so its statistics (and running averages) are run
k's: per run already. Pooling, padding and ReLU act per channel. ResNet-32's
option-A shortcut pads each run's channel block with zeros (not the fused
block's two ends, which would shift run k's channels into run k+1's block).
At a Flatten the layout changes to (K, B, F) and each Linear becomes one
batched matrix multiply (torch.baddbmm) with a leading "which run"
dimension; LDAM's cosine head (NormedLinear) is one batched matrix multiply
of the normalised features and class weights. No operation mixes two runs,
so run k's gradient is its own loss's gradient.

Parameters are the K runs' own values stacked: a convolution weight is
(K*out, in, kh, kw) (rows of run k contiguous), a linear weight (K, out, in).
`run_view(name, t, k)` maps a packed tensor (a parameter or its optimizer state)
to run k's slice, which has exactly the shape of the plain module's tensor.
The pack is assembled from the runs' own models, each built from its own seed,
so every run starts from exactly the initialisation it has alone.

Supported (`PACKABLE`): models whose forward chains their leaf modules, with
only element-wise code between them (ReLU, the residual sum): LeNet-5, Ren
et al.'s LeNet, the CIFAR ResNets (ResNet-32), with either head. Other models
(ResNet-10, 3D-ResNeXt) train as packs of one.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from cdb.models.heads import NormedLinear
from cdb.models.lenet import LeNet5
from cdb.models.lenet_ren import LeNetRen
from cdb.models.resnet_cifar import CifarResNet, ZeroPadShortcut

PACKABLE = (LeNet5, LeNetRen, CifarResNet)  # forward = composition of the leaves below; anything else trains alone
# leaves that act on each channel on its own: on (B, K*C, H, W) they are per run as they are
PER_CHANNEL = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Identity, nn.ConstantPad2d)


class PackedConv2d(nn.Module):
    """K Conv2d as one grouped convolution on (B, K*C_in, H, W)."""

    def __init__(self, convs: list[nn.Conv2d]):
        super().__init__()
        c = convs[0]
        self.k, self.out = len(convs), c.out_channels
        self.stride, self.padding, self.dilation, self.groups = c.stride, c.padding, c.dilation, c.groups
        if c.padding_mode != "zeros":
            raise ValueError("packed convolutions support padding_mode='zeros' only")
        self.weight = nn.Parameter(torch.cat([m.weight.detach() for m in convs]).clone())
        self.bias = None if c.bias is None else nn.Parameter(torch.cat([m.bias.detach() for m in convs]).clone())

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups * self.k)

    def view(self, name: str, t: torch.Tensor, k: int) -> torch.Tensor:
        return t[k * self.out:(k + 1) * self.out]


class PackedLinear(nn.Module):
    """K Linear as one batched matrix multiply on (K, B, in): bias + x @ W^T per run."""

    def __init__(self, linears: list[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in linears]).clone())
        lin = linears[0]
        self.bias = None if lin.bias is None else nn.Parameter(torch.stack([m.bias.detach() for m in linears]).clone())

    def forward(self, x):
        if self.bias is None:
            return torch.bmm(x, self.weight.transpose(1, 2))
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))

    def view(self, name: str, t: torch.Tensor, k: int) -> torch.Tensor:
        return t[k]


class PackedNormedLinear(nn.Module):
    """K cosine heads (NormedLinear, weight (in, out)) as one batched matrix multiply on (K, B, in)."""

    def __init__(self, heads: list[NormedLinear]):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in heads]).clone())

    def forward(self, x):
        return torch.bmm(F.normalize(x, dim=2), F.normalize(self.weight, dim=1))

    def view(self, name: str, t: torch.Tensor, k: int) -> torch.Tensor:
        return t[k]


class PackedZeroPadShortcut(nn.Module):
    """K option-A shortcuts on (B, K*C, H, W): subsample, then zero-pad each run's own block of C channels."""

    def __init__(self, k: int, m: ZeroPadShortcut):
        super().__init__()
        self.k, self.stride, self.pad = k, m.stride, m.pad

    def forward(self, x):
        b, kc = x.shape[:2]
        last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        x = x[:, :, ::self.stride, ::self.stride]
        x = x.reshape(b, self.k, kc // self.k, *x.shape[-2:])  # (B, K, C, H, W): the pad acts on each run's C
        x = F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2)).flatten(1, 2)
        return x.contiguous(memory_format=torch.channels_last) if last else x

    def view(self, name, t, k):  # no tensors
        return t


class PackedBatchNorm2d(nn.BatchNorm2d):
    """K BatchNorm2d as one over K*C channels: statistics are per channel, hence per run."""

    def __init__(self, bns: list[nn.BatchNorm2d]):
        b = bns[0]
        super().__init__(len(bns) * b.num_features, b.eps, b.momentum, b.affine, b.track_running_stats)
        self.c = b.num_features
        with torch.no_grad():
            for name, t in [*self.named_parameters(recurse=False), *self.named_buffers(recurse=False)]:
                if name != "num_batches_tracked":
                    t.copy_(torch.cat([getattr(m, name) for m in bns]))
                else:
                    t.copy_(b.num_batches_tracked)

    def view(self, name: str, t: torch.Tensor, k: int) -> torch.Tensor:
        return t if name == "num_batches_tracked" else t[k * self.c:(k + 1) * self.c]


class PackedFlatten(nn.Module):
    """(B, K*C, H, W) -> (K, B, C*H*W): from the channel-block layout to the run-first layout of the linears."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x):
        b = x.shape[0]
        return x.reshape(b, self.k, -1).transpose(0, 1)

    def view(self, name, t, k):  # no tensors
        return t


def _fuse(mods: list[nn.Module]) -> nn.Module:
    m = mods[0]
    if isinstance(m, nn.Conv2d):
        return PackedConv2d(mods)
    if isinstance(m, nn.Linear):
        return PackedLinear(mods)
    if isinstance(m, NormedLinear):
        return PackedNormedLinear(mods)
    if isinstance(m, ZeroPadShortcut):
        return PackedZeroPadShortcut(len(mods), m)
    if isinstance(m, nn.BatchNorm2d):
        return PackedBatchNorm2d(mods)
    if isinstance(m, nn.Flatten):
        if (m.start_dim, m.end_dim) != (1, -1):
            raise ValueError("packed Flatten supports start_dim=1, end_dim=-1 only")
        return PackedFlatten(len(mods))
    if isinstance(m, PER_CHANNEL):
        return copy.deepcopy(m)
    raise ValueError(f"{type(m).__name__} has no packed form")


def can_pack(model: nn.Module) -> bool:
    """Whether `model` can train inside a pack of K > 1 (its class is known to chain only packable leaves)."""
    return type(model) in PACKABLE


class PackedModel(nn.Module):
    """K copies of one architecture (the `models`, each with its own weights) as one network.

    forward(xs) takes the K runs' batches (each (B, C, H, W), the same B) and
    returns their logits stacked, (K, B, classes). The input models are left
    untouched; `copy_to(models)` / `copy_from(models)` move weights between
    them and the pack, `run_view(name, t, k)` slices any packed tensor.
    """

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        if not models or any(type(m) is not type(models[0]) for m in models):
            raise ValueError("a pack needs one or more models of the same class")
        if not can_pack(models[0]) and len(models) > 1:
            raise ValueError(f"{type(models[0]).__name__} cannot be packed; known: {[c.__name__ for c in PACKABLE]}")
        self.k = len(models)
        self.net = copy.deepcopy(models[0]).to("meta")  # the structure; leaves are replaced below
        self._leaf_of: dict[str, nn.Module] = {}
        for name, leaf in list(models[0].named_modules()):
            if next(leaf.children(), None) is not None:
                continue
            fused = _fuse([dict(m.named_modules())[name] for m in models])
            self.net.set_submodule(name, fused)
            self._leaf_of[name] = fused
        self.names = [n for n, _ in models[0].state_dict().items()]

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.net(torch.cat(xs, dim=1) if len(xs) > 1 else xs[0])

    def _split(self, name: str) -> tuple[nn.Module, str]:
        mod, _, leaf_name = name.rpartition(".")
        return self._leaf_of[mod], leaf_name

    def packed_tensors(self) -> dict[str, torch.Tensor]:
        """Packed tensor behind every state_dict entry of the plain model (names as in the plain model)."""
        sd = self.net.state_dict(keep_vars=True)
        return {n: sd[n] for n in self.names}

    def run_view(self, name: str, t: torch.Tensor, k: int) -> torch.Tensor:
        leaf, local = self._split(name)
        return leaf.view(local, t, k)

    @torch.no_grad()
    def copy_to(self, models: list[nn.Module]) -> None:
        """Write each run's slice into its plain model (parameters and buffers)."""
        packed = self.packed_tensors()
        for k, m in enumerate(models):
            for name, t in m.state_dict(keep_vars=True).items():
                t.copy_(self.run_view(name, packed[name], k))

    @torch.no_grad()
    def copy_from(self, models: list[nn.Module]) -> None:
        packed = self.packed_tensors()
        for k, m in enumerate(models):
            for name, t in m.state_dict(keep_vars=True).items():
                self.run_view(name, packed[name], k).copy_(t)
