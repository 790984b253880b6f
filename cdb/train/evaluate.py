"""Evaluation: one pass over a split, returning the confusion matrix and top-k counts (no per-sample Python)."""
from __future__ import annotations

import contextlib

from dataclasses import dataclass, field

import torch

from cdb.core.errors import CdbError
from cdb.core.metrics import class_accuracy, confusion_matrix
from cdb.train.batches import eval_batches


NON_FINITE = ("the model's outputs became non-finite (NaN or inf) during evaluation; lower trainer.lr or check "
              "the input normalisation (dataset.normalize) and model settings")


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
            raise CdbError(NON_FINITE)
        cm += confusion_matrix(logits.argmax(1), y, c)
        if ks:
            top = logits.topk(max(ks), dim=1).indices
            hits = top == y.view(-1, 1)
            correct += torch.stack([hits[:, :k].any(1).sum() for k in ks]).cpu()
    model.train(was_training)
    return EvalResult(cm, {k: int(v) for k, v in zip(ks, correct)})



@torch.no_grad()
def evaluate_pack(model, jobs, device, batch_size: int = 1000, topk=(1, 5), autocast=None, on_device: bool = True,
                  num_workers: int = 0) -> list[EvalResult | CdbError]:
    """evaluate() for the K runs of a packed model at once: one forward of the whole pack per batch.

    model takes the K runs' batches (a list) and returns their logits (K, B, classes); jobs[k] = (split, data) of
    run k. Runs that share a split (the same split object and normalisation) read and normalise each batch once.
    Splits of other lengths are padded with zero images to the longest batch of each step: in eval mode every
    image's logits depend on that image only (BatchNorm uses its running statistics), and padded rows are never
    counted. Each run gets what evaluate() gives it alone: its counts, or the CdbError for non-finite outputs.
    """
    was_training = model.training
    model.eval()
    keys = [(id(split), tuple(data.mean), tuple(data.std)) for split, data in jobs]
    first = {key: k for k, key in reversed(list(enumerate(keys)))}  # the run whose stream a shared split reads
    streams = {k: eval_batches(jobs[k][0], jobs[k][1], batch_size, device, num_workers, on_device)
               for k in first.values()}
    source = [first[key] for key in keys]
    c = jobs[0][1].num_classes
    ks = [k for k in topk if k <= c]
    cms = [torch.zeros(c, c, dtype=torch.long) for _ in jobs]
    correct = [torch.zeros(len(ks), dtype=torch.long) for _ in jobs]
    finite = torch.ones(len(jobs), dtype=torch.bool, device=device)
    while True:
        got = {k: next(stream, None) for k, stream in streams.items()}
        live = [b for b in got.values() if b is not None]
        if not live:
            break
        n = max(len(y) for _, y in live)
        like = live[0][0]
        xs = []
        for k in source:
            b = got[k]
            x = like.new_zeros((0, *like.shape[1:])) if b is None else b[0]
            xs.append(x if len(x) == n else torch.cat([x, x.new_zeros((n - len(x), *x.shape[1:]))]))
        with autocast() if autocast else contextlib.nullcontext():
            logits = model(xs)
        for r, k in enumerate(source):
            if got[k] is None:
                continue
            y = got[k][1]
            z = logits[r, :len(y)]
            finite[r] &= torch.isfinite(z).all()
            cms[r] += confusion_matrix(z.argmax(1), y, c)
            if ks:
                hits = z.topk(max(ks), dim=1).indices == y.view(-1, 1)
                correct[r] += torch.stack([hits[:, :k].any(1).sum() for k in ks]).cpu()
    model.train(was_training)
    return [EvalResult(cm, {k: int(v) for k, v in zip(ks, hit)}) if ok else CdbError(NON_FINITE)
            for cm, hit, ok in zip(cms, correct, finite.tolist())]
