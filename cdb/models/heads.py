"""Classifier heads a loss may ask for (`loss.head`): the model's plain linear layer, or a cosine head."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cdb.core.errors import check


class NormedLinear(nn.Module):
    """Cosine logits: normalised features times normalised class weights, each logit in [-1, 1].

    Cao et al. (2019) train LDAM with this head and scale its logits by s = 30 in the loss; weights start
    uniform in [-1, 1] with every class column renormalised to unit length, as in their reference code.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        with torch.no_grad():
            self.weight.uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=0)


def use_head(model: nn.Module, head: str) -> nn.Module:
    """Replace the model's last nn.Linear (its classifier) by the named head; "linear" keeps the model as is."""
    check(head in ("linear", "cosine"), "loss.head", head, "linear or cosine")
    if head == "linear":
        return model
    name, last = None, None
    for n, m in model.named_modules():
        if isinstance(m, nn.Linear):
            name, last = n, m
    check(last is not None, "loss.head", head, "a model whose classifier is an nn.Linear layer")
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    setattr(parent, name.rpartition(".")[2], NormedLinear(last.in_features, last.out_features))
    return model
