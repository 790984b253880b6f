"""A pack: K >= 2 runs of one architecture assembled to train as one wide network (HFTA style).

The runs' own modules become one packed network (cdb.models.packed: grouped convolutions, batched matrix
multiplies), each with its own parameters; one SGD over its packed tensors, loaded with each run's momentum, steps
all of them (SGD is element-wise, so this is K independent SGDs); one feed gathers every run's batch of a step
(cdb.train.batches.PackFeed); one loss object returns each run's loss (cdb.train.loss.pack_loss). The loop
(cdb.train.loop) trains a Pack as it trains one run alone. At every validation `hand_back` copies each run's slice
of the weights and momentum into its own module and optimizer, so validation counts, logs and checkpoints are the
run's own (cdb.train.run.RunState).
"""
from __future__ import annotations

import contextlib

import torch

from cdb.core.errors import CdbError, ConfigError
from cdb.models.packed import PackedModel, can_pack
from cdb.train import speed
from cdb.train.batches import PackFeed
from cdb.train.evaluate import EvalResult, evaluate_pack
from cdb.train.loss import pack_loss
from cdb.train.run import RunState


def pack_refusal(runs: list[RunState]) -> str | None:
    """Why these runs cannot train as one pack, or None when they can."""
    lead = runs[0]
    if len(runs) == 1:
        return None
    for r in runs:
        if r.place.world_size > 1:
            return "a pack of several runs trains in one process: leave trainer.devices at 1"
        if r.cfg != lead.cfg:
            return "runs in one pack need the same trainer settings"
        if r.device != lead.device:
            return "runs in one pack need one device"
        if r.cfg.unit == "epoch" and len(r.data.train) != len(lead.data.train):  # step units: batch_size each step
            return ("runs in one pack need training splits of one size (the same batches per epoch), unless "
                    "trainer.unit=step")
        if r.criterion.weighting.per_step:
            return (f"weighting {type(r.criterion.weighting).__name__} takes a meta step through its own model: "
                    "it trains as a pack of one")
        if type(r.model) is not type(lead.model) or r.model.state_dict().keys() != lead.model.state_dict().keys():
            return "runs in one pack need the same model"
        if any(a.shape != b.shape for a, b in zip(r.model.state_dict().values(), lead.model.state_dict().values())):
            return "runs in one pack need the same model shapes (number of classes, input size)"
        if tuple(r.data.input_shape) != tuple(lead.data.input_shape):  # ResNet-32's weights fit any image size
            return "runs in one pack need inputs of one shape"
    if not can_pack(lead.model):
        return f"model {type(lead.model).__name__} has no packed form yet: it trains as a pack of one"
    return None


class Pack:
    """`runs` (K >= 2) assembled as one: the packed network, its SGD, the feed and the loss, loaded with the runs'
    weights and momentum (so a resumed pack continues each run)."""

    def __init__(self, runs: list[RunState]):
        if len(runs) < 2:
            raise ConfigError("a pack needs at least two runs (one run trains alone: cdb.train.loop.Alone)")
        why = pack_refusal(runs)
        if why:
            raise ConfigError(why)
        lead = runs[0]
        self.runs, self.cfg, self.device = runs, lead.cfg, lead.device
        self.steps_per_unit, self.autocast = lead.steps_per_unit, lead.autocast or contextlib.nullcontext
        datas = [r.data for r in runs]  # one tensor of K batches per step (cdb.train.batches.PackFeed)
        self.feed = PackFeed(datas, [r.seed for r in runs], self.device, self.cfg.data_on_device) \
            if PackFeed.fits(datas) else None
        cfg = self.cfg
        self.packed = speed.prepare_model(PackedModel([r.model for r in runs]).to(self.device), cfg)
        self.net = speed.compile_model(self.packed, cfg)
        self.optimizer = torch.optim.SGD(self.packed.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
        self.own = [dict(r.model.named_parameters()) for r in runs]  # each run's parameters by name
        self.load_momentum()
        self.loss = pack_loss(runs, self.net)

    def load_momentum(self) -> None:
        """Each run's momentum buffers into the packed optimizer (where every run has one)."""
        for name, p in self.packed.net.named_parameters():
            bufs = [r.optimizer.state.get(own[name], {}).get("momentum_buffer") for r, own in zip(self.runs, self.own)]
            if all(b is not None for b in bufs):
                buf = torch.zeros_like(p)
                for k, b in enumerate(bufs):
                    self.packed.run_view(name, buf, k).copy_(b)
                self.optimizer.state[p]["momentum_buffer"] = buf

    def steps(self, u: int):
        """Each step of unit u: (inputs, labels, index batches), each a list of every run's, in run order."""
        if self.feed is None:
            for items in zip(*(r.batches(u) for r in self.runs)):
                xs, ys, bs = zip(*items)
                yield list(xs), list(ys), list(bs)
            return
        first = u * self.steps_per_unit
        for x, y, bs in self.feed.steps([r.index_batches(u) for r in self.runs], first):
            yield [speed.prepare_input(xk, self.cfg) for xk in x.unbind(0)], list(y.unbind(0)), bs

    @torch.no_grad()
    def hand_back(self, lr: float) -> None:
        """Each run's slice of the packed weights and momentum into its own module and optimizer (at lr)."""
        self.packed.copy_to([r.model for r in self.runs])
        for name, p in self.packed.net.named_parameters():
            buf = self.optimizer.state.get(p, {}).get("momentum_buffer")
            if buf is None:
                continue
            for k, (r, own) in enumerate(zip(self.runs, self.own)):
                r.optimizer.state[own[name]]["momentum_buffer"] = self.packed.run_view(name, buf, k).clone()
        for r in self.runs:
            for g in r.optimizer.param_groups:
                g["lr"] = lr

    def validate(self) -> list[EvalResult | CdbError]:
        """Every run's validation counts from one packed forward per batch (cdb.train.evaluate.evaluate_pack); runs
        whose validation splits are one object read each batch once."""
        lead = self.runs[0]
        return evaluate_pack(self.net, [(r.data.val, r.data) for r in self.runs], self.device,
                             self.cfg.eval_batch_size, autocast=lead.autocast, on_device=self.cfg.data_on_device,
                             num_workers=self.cfg.num_workers)
