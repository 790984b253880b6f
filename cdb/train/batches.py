"""Batches for training and evaluation.

The order of training samples is a pure function of (seed, step), so a
resumed run sees exactly the batches an uninterrupted one would, with no
sampler state to save. In-memory TensorSplits are sliced, augmented and
normalised a batch at a time; Dataset splits go through a DataLoader.

trainer.sampler (Kang et al. 2020, sec. 3): `instance` (the default) is the
shuffled passes above; `class_balanced`, `sqrt` and `progressive` draw each
unit's samples with replacement, class j with probability p_j (class_probabilities),
from a generator seeded by (seed, unit), so they are a pure function of
(seed, step) too.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from cdb.data.augment import AUGMENTATIONS, RUN_AUGMENTATIONS, normalize, to_device
from cdb.data.base import DatasetSplits, TensorSplit

_ORDER, _AUGMENT, _RESAMPLE = 1_000_003, 2_000_029, 3_000_017  # stream offsets: order, augmentation and
# re-sampling draw unrelated numbers


def _gen(seed: int, stream: int, index: int) -> torch.Generator:
    # modulo 2**64 (torch's seed range): unchanged for every seed below ~10**6, and no overflow for any seed
    return torch.Generator().manual_seed(((int(seed) * 7_919 + stream) * 1_000_000_007 + int(index)) % 2**64)


def steps_per_unit(n: int, batch_size: int, unit: str) -> int:
    return math.ceil(n / batch_size) if unit == "epoch" else 1


@functools.lru_cache(maxsize=64)  # a few passes for each of up to ~30 batched seeds
def _pass_order(n: int, seed: int, p: int) -> torch.Tensor:
    """Order of pass p of the step stream, kept for the ~n/batch_size steps that slice it (callers only slice)."""
    return torch.randperm(n, generator=_gen(seed, _ORDER, p))


# trainer.sampler -> q of p_j ∝ n_j^q (Kang et al. 2020, sec. 3); progressive mixes q = 1 and q = 0 over training
SAMPLERS = {"instance": 1.0, "class_balanced": 0.0, "sqrt": 0.5, "progressive": None}


def class_probabilities(counts, sampler: str, u: int = 0, length: int = 1) -> torch.Tensor:
    """p_j, the probability that a drawn sample is of class j, in unit u (0-based) of `length` (float64).

    instance, class_balanced, sqrt: p_j = n_j^q / sum_i n_i^q with q = 1, 0, 1/2. progressive:
    p_j(t) = (1 - t/T) p_j^IB + (t/T) p_j^CB with t = u and T = length (instance-balanced at the first unit,
    nearly class-balanced at the last). A class without training samples is never drawn (p_j = 0).
    """
    n = torch.as_tensor(counts, dtype=torch.float64)

    def power(q: float) -> torch.Tensor:
        w = torch.where(n > 0, n.clamp_min(1) ** q, torch.zeros_like(n))
        return w / w.sum()

    if sampler == "progressive":
        t = u / length
        return (1 - t) * power(1.0) + t * power(0.0)
    return power(SAMPLERS[sampler])


class Sampling:
    """What a re-sampled batch plan needs of a run: its sampler, training labels and trainer.length."""

    def __init__(self, sampler: str, labels: torch.Tensor, num_classes: int, length: int):
        self.sampler, self.length = sampler, int(length)
        self.labels = torch.as_tensor(labels, dtype=torch.long).cpu()
        self.counts = torch.bincount(self.labels, minlength=num_classes)
        self._fixed = None if sampler == "progressive" else self._sample_weights(0)

    def _sample_weights(self, u: int) -> torch.Tensor:
        """Each training sample's probability: p_{y_i} / n_{y_i} (uniform within its class)."""
        p = class_probabilities(self.counts, self.sampler, u, self.length)
        return (p / self.counts.clamp_min(1))[self.labels]

    def draw(self, k: int, seed: int, u: int) -> torch.Tensor:
        """k sample indices drawn with replacement for unit u, from a generator seeded by (seed, u)."""
        w = self._fixed if self._fixed is not None else self._sample_weights(u)
        return torch.multinomial(w, k, replacement=True, generator=_gen(seed, _RESAMPLE, u))


def describe_sampling(sampler: str, counts, class_names: list[str], length: int) -> str:
    """One line for run.log and the dry run: the sampler and the expected share of each class in a batch."""
    counts = torch.as_tensor(counts)

    def shares(p: torch.Tensor) -> str:
        if len(p) <= 10:
            return ", ".join(f"{name} {float(x):.3f}" for name, x in zip(class_names, p))
        big, small = int(counts.argmax()), int(torch.where(counts > 0, counts, counts.max() + 1).argmin())
        return (f"largest class ({class_names[big]}) {float(p[big]):.4f}, smallest ({class_names[small]}) "
                f"{float(p[small]):.4f}")

    if sampler == "instance":
        return ("sampler: instance (shuffled passes, p_j = n_j / N): expected batch shares "
                f"{shares(class_probabilities(counts, 'instance'))}")
    if sampler == "progressive":
        return (f"sampler: progressive (p_j(t) = (1 - t/T) n_j/N + (t/T)/C, T = {length} units, drawn with "
                f"replacement): expected batch shares {shares(class_probabilities(counts, 'instance'))} at unit 0, "
                f"{shares(class_probabilities(counts, sampler, length - 1, length))} at the last unit")
    q = {0.0: "0", 0.5: "1/2"}[SAMPLERS[sampler]]
    return (f"sampler: {sampler} (p_j ∝ n_j^{q}, drawn with replacement): expected batch shares "
            f"{shares(class_probabilities(counts, sampler))}")


def unit_batches(n: int, batch_size: int, unit: str, u: int, seed: int,
                 sampling: Sampling | None = None) -> list[torch.Tensor]:
    """Index tensors of the batches of unit `u`.

    unit="epoch": one shuffled pass (the last batch may be smaller).
    unit="step": one batch of exactly batch_size from an endless stream of
    shuffled passes, as in Ren et al.'s step-counted MNIST training.
    sampling (trainer.sampler other than instance): an epoch is n samples drawn with replacement from p_j,
    cut into the same batches as a pass; a step is batch_size such samples.
    """
    if sampling is not None and sampling.sampler != "instance":
        if unit == "epoch":
            return list(torch.split(sampling.draw(n, seed, u), batch_size))
        return [sampling.draw(batch_size, seed, u)]
    if unit == "epoch":
        perm = torch.randperm(n, generator=_gen(seed, _ORDER, u))
        return list(torch.split(perm, batch_size))
    start = u * batch_size
    p0 = start // n
    parts, need, offset, p = [], batch_size, start - p0 * n, p0
    while need > 0:
        perm = _pass_order(n, seed, p)
        take = perm[offset: offset + need]
        parts.append(take)
        need -= len(take)
        offset, p = 0, p + 1
    return [torch.cat(parts)]


@dataclass(frozen=True)
class Shard:
    """One data-parallel rank's rows [lo, hi) of a global batch (`index` is the whole global batch)."""

    index: torch.Tensor
    lo: int
    hi: int

    @property
    def total(self) -> int:
        return len(self.index)

    @property
    def local(self) -> torch.Tensor:
        return self.index[self.lo: self.hi]


def _on_device(split: TensorSplit, device, keep: bool = True) -> TensorSplit:
    """The split's tensors on `device`, moved once and cached on the split object (keep=False: left where they are)."""
    if torch.device(device).type == "cpu" or not keep:
        return split
    cache = split.__dict__.setdefault("_device_cache", {})
    key = str(device)
    if key not in cache:
        cache[key] = TensorSplit(split.x.to(device, non_blocking=True), split.y.to(device, non_blocking=True))
    return cache[key]


def _to(idx: torch.Tensor, device) -> torch.Tensor:
    """An index tensor onto `device` without making the host wait for the GPU (pinned, asynchronous copy)."""
    return to_device(idx, device)


def train_batches(data: DatasetSplits, batches: list[torch.Tensor | Shard], device, seed: int, first_step: int,
                  num_workers: int = 0, on_device: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (inputs, labels) on `device` for the given index batches; step numbers start at first_step.

    A Shard yields only its rows, but a batched augmentation runs on the
    whole global batch first, so every rank's rows get exactly the crops and
    flips that one process would give them. on_device=False keeps an
    in-memory split in host memory and moves each (uint8) batch instead.
    """
    split = data.train
    if isinstance(split, TensorSplit):
        src = _on_device(split, device, on_device)
        aug = AUGMENTATIONS[data.augment]
        for i, b in enumerate(batches):
            idx, lo, hi = (b.index, b.lo, b.hi) if isinstance(b, Shard) else (b, 0, len(b))
            idx = _to(idx, src.x.device)
            if aug is None:
                x = src.x[idx[lo:hi]].to(device, non_blocking=True)
            else:
                x = aug(src.x[idx].to(device, non_blocking=True), _gen(seed, _AUGMENT, first_step + i))[lo:hi]
            yield normalize(x, data.mean, data.std), src.y[idx[lo:hi]].to(device, non_blocking=True)
        return
    loader = DataLoader(split, batch_sampler=[(b.local if isinstance(b, Shard) else b).tolist() for b in batches],
                        num_workers=num_workers,
                        pin_memory=torch.device(device).type == "cuda", persistent_workers=False)
    for x, y in loader:
        yield x.to(device, non_blocking=True), torch.as_tensor(y).to(device, non_blocking=True)


def eval_batches(split: TensorSplit | Dataset, data: DatasetSplits, batch_size: int, device,
                 num_workers: int = 0, on_device: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(split, TensorSplit):
        src = _on_device(split, device, on_device)
        for i in range(0, len(src), batch_size):
            x = src.x[i: i + batch_size].to(device, non_blocking=True)
            yield normalize(x, data.mean, data.std), src.y[i: i + batch_size].to(device, non_blocking=True)
        return
    loader = DataLoader(split, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=torch.device(device).type == "cuda")
    for x, y in loader:
        yield x.to(device, non_blocking=True), torch.as_tensor(y).to(device, non_blocking=True)


class PackFeed:
    """The training batches of K runs in one process, gathered, moved and normalised as one tensor per step.

    For in-memory splits (TensorSplit) of one image shape and augmentation: the runs' training images are one
    uint8 tensor (runs that share a split object share its rows; others are concatenated once), so a step is one
    (K, B) index tensor (one pinned, asynchronous copy to a GPU), one gather, one augmentation (each run's crops
    from its own generator, as alone) and one normalisation with each run's own statistics ((K, 1, C, 1, 1)). Each
    run's images, labels and augmentation are exactly those train_batches gives it alone (element-wise
    arithmetic on the same values). `PackFeed.fits(datas)` says whether the runs qualify; otherwise each run
    streams its own batches (train_batches).
    """

    def __init__(self, datas: list[DatasetSplits], seeds: list[int], device, on_device: bool = True):
        self.device, self.seeds = torch.device(device), [int(s) for s in seeds]
        splits: dict[int, TensorSplit] = {}
        for d in datas:
            splits.setdefault(id(d.train), d.train)
        starts, n = {}, 0
        for key, split in splits.items():
            starts[key], n = n, n + len(split)
        whole = next(iter(splits.values())) if len(splits) == 1 else \
            TensorSplit(torch.cat([s.x for s in splits.values()]), torch.cat([torch.as_tensor(s.y) for s in
                                                                              splits.values()]))
        self.src = _on_device(whole, self.device, on_device)
        self.offsets = torch.tensor([starts[id(d.train)] for d in datas]).view(-1, 1)
        c = datas[0].train.x.shape[1]
        mean = torch.tensor([list(map(float, d.mean)) for d in datas], dtype=torch.float32).view(len(datas), 1, c, 1, 1)
        std = torch.tensor([list(map(float, d.std)) for d in datas], dtype=torch.float32).view(len(datas), 1, c, 1, 1)
        self.mean, self.std = to_device(mean, self.device), to_device(std, self.device)
        self.augment = RUN_AUGMENTATIONS[datas[0].augment]

    @staticmethod
    def fits(datas: list[DatasetSplits]) -> bool:
        d0 = datas[0]
        return all(isinstance(d.train, TensorSplit) and d.augment == d0.augment and d.train.x.dtype == torch.uint8
                   and tuple(d.train.x.shape[1:]) == tuple(d0.train.x.shape[1:]) and len(d.mean) == len(d0.mean)
                   for d in datas)

    def steps(self, index_batches: list[list[torch.Tensor]], first_step: int
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]]:
        """(inputs (K, B, C, H, W) normalised, labels (K, B), each run's index batch) for each step; index_batches[k]:
        run k's batches (cdb.train.batches.unit_batches), all of one length per step."""
        for i, bs in enumerate(zip(*index_batches)):
            idx = to_device(torch.stack(bs) + self.offsets, self.src.x.device)  # (K, B): one copy
            x = to_device(self.src.x[idx], self.device)  # data_on_device=false: the gathered batch, one copy
            if self.augment is not None:
                x = self.augment(x, [_gen(s, _AUGMENT, first_step + i) for s in self.seeds])
            yield normalize(x, self.mean, self.std), to_device(self.src.y[idx], self.device), list(bs)
