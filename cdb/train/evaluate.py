"""Evaluation: one pass over a split, returning the confusion matrix and top-k counts (no per-sample Python)."""
from __future__ import annotations

import contextlib

from dataclasses import dataclass, field

import torch

from cdb.core.errors import CdbError
from cdb.core.metrics import class_accuracy
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


PACK_EVAL_IMAGES = 1000  # images in one forward of a pack's validation: each run's batch is this / K (at least 1)


def count_into(cm: torch.Tensor, preds: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None
               ) -> None:
    """Add predictions to the counts `cm` (..., C, C) on their device, without a host sync: entry [t, p] (of the
    leading index the flat `preds` carry in their multiples of C * C) gains `weight` (1 when None) per sample."""
    c = cm.shape[-1]
    idx = targets.long() * c + preds.long()
    cm.view(-1).index_add_(0, idx.reshape(-1), torch.ones_like(idx).reshape(-1) if weight is None
                           else weight.reshape(-1).long())


@torch.no_grad()
def evaluate(model, split, data, device, batch_size: int = 1000, topk=(1, 5), autocast=None,
             on_device: bool = True, num_workers: int = 0) -> EvalResult:
    """Counts summed over the whole split; under DDP the caller all-reduces `confusion` and `topk_correct`.

    The counts stay on the device until the split is done (no host sync per batch); non-finite outputs raise
    then."""
    was_training = model.training
    model.eval()
    c = data.num_classes
    cm = torch.zeros(c, c, dtype=torch.long, device=device)
    ks = [k for k in topk if k <= c]
    correct = torch.zeros(len(ks), dtype=torch.long, device=device)
    finite = torch.ones((), dtype=torch.bool, device=device)
    for x, y in eval_batches(split, data, batch_size, device, num_workers, on_device):
        with autocast() if autocast else contextlib.nullcontext():
            logits = model(x)
        # NaN logits would count as predictions of class 0 (argmax) and disagree with top-k: say so instead
        finite &= torch.isfinite(logits).all()
        count_into(cm, logits.argmax(1), y)
        if ks:
            top = logits.topk(max(ks), dim=1).indices
            hits = top == y.view(-1, 1)
            correct += torch.stack([hits[:, :k].any(1).sum() for k in ks])
    model.train(was_training)
    if not bool(finite):
        raise CdbError(NON_FINITE)
    return EvalResult(cm.cpu(), {k: int(v) for k, v in zip(ks, correct.tolist())})


@torch.no_grad()
def evaluate_pack(model, jobs, device, batch_size: int = 1000, topk=(1, 5), autocast=None, on_device: bool = True,
                  num_workers: int = 0, max_images: int = PACK_EVAL_IMAGES) -> list[EvalResult | CdbError]:
    """evaluate() for the K runs of a packed model at once: one forward of the whole pack per batch.

    model takes the K runs' batches (a list) and returns their logits (K, B, classes); jobs[k] = (split, data) of
    run k. A forward holds at most max(K, max_images) images: each run's batch is min(batch_size, max_images // K)
    (at least 1), so a pack of 70 does not validate 70 x 1000 images at once (in eval mode an image's logits do not
    depend on the others in its batch, so the counts are those of any batch size). Runs that share a split (the
    same split object and normalisation) read and normalise each batch once.
    Splits of other lengths are padded with zero images to the longest batch of each step: in eval mode every
    image's logits depend on that image only (BatchNorm uses its running statistics), and padded rows are never
    counted. The counts of all runs stay on the device until the end (one read-back). Each run gets what
    evaluate() gives it alone: its counts, or the CdbError for non-finite outputs.
    """
    was_training = model.training
    model.eval()
    batch_size = max(1, min(batch_size, max_images // len(jobs)))
    keys = [(id(split), tuple(data.mean), tuple(data.std)) for split, data in jobs]
    first = {key: k for k, key in reversed(list(enumerate(keys)))}  # the run whose stream a shared split reads
    streams = {k: eval_batches(jobs[k][0], jobs[k][1], batch_size, device, num_workers, on_device)
               for k in first.values()}
    source = [first[key] for key in keys]
    c, runs = jobs[0][1].num_classes, len(jobs)
    ks = [k for k in topk if k <= c]
    cms = torch.zeros(runs, c, c, dtype=torch.long, device=device)
    correct = torch.zeros(runs, len(ks), dtype=torch.long, device=device)
    finite = torch.ones(runs, dtype=torch.bool, device=device)
    offset = (torch.arange(runs, device=device) * c).view(runs, 1)  # run r's rows of cms, flat: r * C + t
    while True:
        got = {k: next(stream, None) for k, stream in streams.items()}
        live = [b for b in got.values() if b is not None]
        if not live:
            break
        n = max(len(y) for _, y in live)
        like, ylike = live[0]
        xs, ys = [], []
        for k in source:
            b = got[k]
            x, y = (like.new_zeros((0, *like.shape[1:])), ylike.new_zeros(0)) if b is None else b
            xs.append(x if len(x) == n else torch.cat([x, x.new_zeros((n - len(x), *x.shape[1:]))]))
            ys.append(y if len(y) == n else torch.cat([y, y.new_full((n - len(y),), -1)]))  # -1: a padded row
        with autocast() if autocast else contextlib.nullcontext():
            logits = model(xs)
        y = torch.stack(ys).long()  # (K, n)
        valid = y >= 0
        yc = y.clamp_min(0)
        finite &= (torch.isfinite(logits).all(2) | ~valid).all(1)
        count_into(cms, logits.argmax(2), offset + yc, valid)
        if ks:
            hits = logits.topk(max(ks), dim=2).indices == yc.unsqueeze(2)
            correct += torch.stack([(hits[:, :, :k].any(2) & valid).sum(1) for k in ks], 1)
    model.train(was_training)
    cms, correct, finite = cms.cpu(), correct.tolist(), finite.tolist()
    return [EvalResult(cm, {k: int(v) for k, v in zip(ks, hit)}) if ok else CdbError(NON_FINITE)
            for cm, hit, ok in zip(cms, correct, finite)]
