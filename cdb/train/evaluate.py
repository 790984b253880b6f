"""Evaluation: one pass over a split, returning the confusion matrix and top-k counts (no per-sample Python)."""
from __future__ import annotations

import contextlib

from dataclasses import dataclass, field

import torch

from cdb.core.errors import CdbError
from cdb.core.metrics import class_accuracy, confusion_matrix
from cdb.train.batches import eval_batches


@dataclass
class EvalResult:
    confusion: torch.Tensor
    topk_correct: dict[int, int] = field(default_factory=dict)

    @property
    def class_accuracy(self) -> torch.Tensor:
        return class_accuracy(self.confusion)

    @property
    def balanced_accuracy(self) -> float:
        return 100.0 * float(self.class_accuracy.mean())


@torch.no_grad()
def evaluate(model, split, data, device, batch_size: int = 1000, topk=(1, 5), autocast=None,
             on_device: bool = True, num_workers: int = 0) -> EvalResult:
    """Counts summed over the whole split; under DDP the caller all-reduces `confusion` and `topk_correct`."""
    was_training = model.training
    model.eval()
    c = data.num_classes
    cm = torch.zeros(c, c, dtype=torch.long)
    ks = [k for k in topk if k <= c]
    correct = torch.zeros(len(ks), dtype=torch.long)
    for x, y in eval_batches(split, data, batch_size, device, num_workers, on_device):
        with autocast() if autocast else contextlib.nullcontext():
            logits = model(x)
        # NaN logits would count as predictions of class 0 (argmax) and disagree with top-k: say so instead
        if not torch.isfinite(logits).all():
            raise CdbError("the model's outputs became non-finite (NaN or inf) during evaluation; lower "
                           "trainer.lr or check the input normalisation (dataset.normalize) and model settings")
        cm += confusion_matrix(logits.argmax(1), y, c)
        if ks:
            top = logits.topk(max(ks), dim=1).indices
            hits = top == y.view(-1, 1)
            correct += torch.stack([hits[:, :k].any(1).sum() for k in ks]).cpu()
    model.train(was_training)
    return EvalResult(cm, {k: int(v) for k, v in zip(ks, correct)})

