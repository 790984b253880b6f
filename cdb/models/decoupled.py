"""The networks of the decoupled second stage (Kang et al. 2020, "Decoupling representation and classifier for
long-tailed recognition", sec. 4): a trained model split into frozen features and its linear classifier, and the
classifiers that replace it.

    split_classifier(model)        -> (features, classifier): the model with its last nn.Linear replaced by
                                      nn.Identity, and that nn.Linear
    Decoupled(features, head)      the features, frozen (no gradients, always in eval mode), then `head`
    tau_normalized(linear, tau)    w_j / ||w_j||^tau on the weight rows, the bias unchanged (tau-normalisation)
    ScaledLinear(linear)           f_j * (w_j x + b_j) with learnable f (init 1) on a frozen linear layer (LWS)

cRT re-trains a freshly initialised nn.Linear of the classifier's shape as the head.
"""
from __future__ import annotations

import torch
from torch import nn

from cdb.core.errors import CdbError


def last_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """(name, module) of the last registered module that holds parameters of its own: a model's classifier."""
    found = None
    for name, m in model.named_modules():
        if any(True for _ in m.parameters(recurse=False)):
            found = (name, m)
    if found is None:
        raise CdbError(f"model {type(model).__name__} has no parameters, so no classifier to decouple")
    return found


def split_classifier(model: nn.Module, what: str = "the model") -> tuple[nn.Module, nn.Linear]:
    """Replace the model's classifier (its last layer, which must be an nn.Linear) by nn.Identity in place; return
    (the model, now its features, and the removed nn.Linear). Refused in one line when the last layer is not an
    nn.Linear (e.g. the cosine head loss.head=cosine puts there)."""
    name, layer = last_layer(model)
    if type(layer) is not nn.Linear:
        raise CdbError(f"{what} ({type(model).__name__}) has no linear classifier to decouple: its last layer "
                       f"{name!r} is a {type(layer).__name__}, not an nn.Linear")
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    setattr(parent, name.rpartition(".")[2], nn.Identity())
    return model, layer


class Decoupled(nn.Module):
    """`features` (frozen: requires_grad off, kept in eval mode so BatchNorm statistics never move) then `head`."""

    def __init__(self, features: nn.Module, head: nn.Module):
        super().__init__()
        self.features, self.head = features, head
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.features.eval()

    def train(self, mode: bool = True) -> "Decoupled":
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            f = self.features(x)
        return self.head(f)


def tau_normalize(weight: torch.Tensor, tau: float) -> torch.Tensor:
    """Each row w_j divided by ||w_j||_2^tau (a zero row stays zero); tau = 0 returns the weights unchanged."""
    norm = weight.norm(dim=1, keepdim=True)
    return weight / torch.where(norm > 0, norm ** tau, torch.ones_like(norm))


def tau_normalized(linear: nn.Linear, tau: float) -> nn.Linear:
    """A frozen copy of `linear` with tau-normalised weight rows and the same bias."""
    out = nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        out.weight.copy_(tau_normalize(linear.weight.detach(), tau))
        if linear.bias is not None:
            out.bias.copy_(linear.bias.detach())
    return out.requires_grad_(False)


class ScaledLinear(nn.Module):
    """Learnable weight scaling: logits f_j * (w_j x + b_j), `linear` frozen, scales f initialised to 1."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.linear = linear.requires_grad_(False)
        self.scales = nn.Parameter(torch.ones(linear.out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * self.scales
