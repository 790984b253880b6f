"""tau-normalisation's choice of tau (Kang et al. 2020, sec. 4): the features of a split computed once, then the
tau-normalised classifier scored on them for every tau of a grid. The caller passes the validation split; the
test split is never looked at here.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cdb.core.metrics import class_accuracy, confusion_matrix
from cdb.models.decoupled import tau_normalize
from cdb.train.batches import eval_batches

TAU_GRID = tuple(i / 10 for i in range(21))   # 0, 0.1, ..., 2


@torch.no_grad()
def features_of(features: nn.Module, split, data, device, batch_size: int = 1000, on_device: bool = True,
                num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, labels) of every sample of `split`, in order, from the frozen feature network in eval mode."""
    was = features.training
    features.eval()
    fs, ys = [], []
    for x, y in eval_batches(split, data, batch_size, device, num_workers, on_device):
        fs.append(features(x).float())
        ys.append(y)
    features.train(was)
    return torch.cat(fs), torch.cat(ys)


def balanced_accuracy(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """100 x the mean over classes of the per-class accuracy (a run's val_balanced_accuracy)."""
    return 100.0 * float(class_accuracy(confusion_matrix(logits.argmax(1), labels, num_classes)).mean())


@torch.no_grad()
def choose_tau(features: torch.Tensor, labels: torch.Tensor, classifier: nn.Linear, taus=TAU_GRID,
               num_classes: int | None = None) -> tuple[float, list[float]]:
    """(the tau of `taus` whose tau-normalised classifier has the highest balanced accuracy on (features, labels),
    the balanced accuracy of every tau); ties go to the first such tau in the grid's order."""
    c = num_classes or classifier.out_features
    w, b = classifier.weight.detach().float(), None if classifier.bias is None else classifier.bias.detach().float()
    accs = [balanced_accuracy(F.linear(features, tau_normalize(w, float(t)), b), labels, c) for t in taus]
    best = max(range(len(taus)), key=lambda i: (accs[i], -i))
    return float(taus[best]), accs
