"""Many seeds of one small model trained as one batched model (torch.func: stack_module_state + vmap).

`cdb-sweep seeds=0-9 [overrides]` (or `python -m cdb.train.batched ...`)
trains the runs `cdb-run [overrides] seed=0` ... `seed=9` would train, in one
process, and writes the same run directories (config.yaml, data.json,
log.jsonl, checkpoints, metrics.json). Each seed keeps everything it has in
a separate run: its own data split, initialisation, batch order and
augmentation (the same Trainer objects build them), its own CDB weights
(its own criterion, updated from its own validation). Only the forward and
backward passes are batched: the S models' parameters are stacked along a
new leading dimension, vmap runs them on the S batches at once, and one SGD
steps all of them (SGD is element-wise, so this is S independent SGDs).
Validation, weighting updates, logging and checkpoints reuse the Trainer's
code per seed. Results equal separate runs up to float summation order
(vmapped convolutions sum in another order); tests/test_batched.py checks it.

For small models (LeNet-5 on MNIST, Tables 1-2), where a single run is
dominated by per-step overhead. Models with BatchNorm buffers and weightings
that need a meta step (they override sample_weights) are refused.
"""
from __future__ import annotations

import copy
import re
import sys
import time

import torch
from torch.func import functional_call, stack_module_state, vmap
from tqdm.auto import tqdm

from ..errors import CdbError, ConfigError
from ..losses.weighting import Weighting
from ..metrics import result_line
from .batches import train_batches, unit_batches
from .loop import Trainer


class BatchedSeeds:
    """Train the runs of `trainers` (one per seed, same settings) together; same results as Trainer.fit each.

    vectorize: True runs the S models with vmap (one batched kernel per
    layer: what makes this fast on a GPU, where a LeNet step is kernel-launch
    bound); False runs them one after another through the stacked
    parameters, still with one optimizer step for all (on CPU, convolutions
    are compute-bound and vmap's grouped convolutions are slower than S
    small ones; scripts/bench.py measures both). None: vmap on CUDA only.
    """

    def __init__(self, trainers: list[Trainer], vectorize: bool | None = None):
        if not trainers:
            raise ConfigError("seeds= names no seed: give at least one, e.g. seeds=0-9")
        t0 = trainers[0]
        for t in trainers:
            if t.dist is not None:
                raise ConfigError("batched seeds run in one process: leave trainer.devices at 1")
            if t.cfg != t0.cfg:
                raise ConfigError("batched seeds need the same trainer settings for every seed")
            if len(t.data.train) != len(t0.data.train) or t.device != t0.device:
                raise ConfigError("batched seeds need training splits of one size on one device")
            if any(True for _ in t.model.buffers()):
                raise ConfigError(f"model {type(t.model).__name__} has buffers (BatchNorm?); batched seeds support "
                                  "buffer-free models such as lenet5: train it with separate cdb-run runs")
            if type(t.criterion.weighting).sample_weights is not Weighting.sample_weights:
                raise ConfigError(f"weighting {type(t.criterion.weighting).__name__} computes sample weights in a "
                                  "meta step; batched seeds support class-weight strategies: use cdb-run")
        self.trainers, self.cfg, self.device = trainers, t0.cfg, t0.device
        self.vectorize = self.device.type == "cuda" if vectorize is None else bool(vectorize)
        self.base = copy.deepcopy(t0.model).to("meta")  # structure only: the weights come from the stack

    # ---- stacking ----------------------------------------------------------------------------------------
    def _stack(self, trainers: list[Trainer]) -> None:
        """Stack the seeds' parameters (and SGD momentum, when resuming) into one batched model and optimizer."""
        params, _ = stack_module_state([t.model for t in trainers])
        self.params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        c = self.cfg
        self.opt = torch.optim.SGD(list(self.params.values()), lr=c.lr, momentum=c.momentum,
                                   weight_decay=c.weight_decay, nesterov=c.nesterov)
        for name, p in self.params.items():
            bufs = [t.optimizer.state.get(dict(t.model.named_parameters())[name], {}).get("momentum_buffer")
                    for t in trainers]
            if all(b is not None for b in bufs):
                self.opt.state[p]["momentum_buffer"] = torch.stack(bufs).clone()

    @torch.no_grad()
    def _unstack(self, trainers: list[Trainer], lr: float) -> None:
        """Copy each seed's slice back into its Trainer (model and SGD state), so its checkpoint is a normal one."""
        for s, t in enumerate(trainers):
            for name, p in t.model.named_parameters():
                p.copy_(self.params[name][s])
                buf = self.opt.state.get(self.params[name], {}).get("momentum_buffer")
                if buf is not None:
                    t.optimizer.state[p]["momentum_buffer"] = buf[s].clone()
            for g in t.optimizer.param_groups:
                g["lr"] = lr

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (S, B, C) of the S models on their S batches x (S, B, ...)."""
        def one(p, xi):
            return functional_call(self.base, p, (xi,))
        if self.vectorize:
            return vmap(one)(self.params, x)
        return torch.stack([one({k: v[s] for k, v in self.params.items()}, x[s]) for s in range(x.shape[0])])

    # ---- the loop ----------------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> list[dict]:
        """Train every seed to trainer.length; returns each seed's metrics (in the order of the trainers)."""
        results: list[dict | None] = [t.begin(resume) for t in self.trainers]
        active = [t for t, r in zip(self.trainers, results) if r is None]
        if active:
            units = {t.unit for t in active}
            if len(units) > 1:
                raise CdbError(f"the unfinished runs stopped at different units {sorted(units)}; resume them "
                               "separately with cdb-run resume=true")
            metrics = self._train(active)
            it = iter(metrics)
            results = [r if r is not None else next(it) for r in results]
        return results

    def _train(self, trainers: list[Trainer]) -> list[dict]:
        cfg, spu = self.cfg, trainers[0].steps_per_unit
        self._stack(trainers)
        unit = trainers[0].unit
        bar = tqdm(total=cfg.length * spu, initial=unit * spu, disable=not cfg.progress, unit="step",
                   desc=f"{len(trainers)} seeds", dynamic_ncols=True, mininterval=1.0)
        t0 = time.time()
        try:
            while unit < cfg.length:
                u_end = min(unit + cfg.eval_every, cfg.length)
                losses = self._train_units(trainers, unit, u_end, bar)
                unit = u_end
                self._unstack(trainers, cfg.lr_at(unit - 1))
                for t, loss in zip(trainers, losses):
                    t.unit = unit
                    t._after_units(loss, time.time() - t0)
        except KeyboardInterrupt:
            bar.close()
            raise CdbError("interrupted; the last checkpoint of every seed is kept: run the same command with "
                           "resume=true to continue") from None
        bar.close()
        return [t._finish(time.time() - t0) for t in trainers]

    def _train_units(self, trainers: list[Trainer], u0: int, u1: int, bar) -> list[float]:
        cfg, n, spu = self.cfg, len(trainers[0].data.train), trainers[0].steps_per_unit
        autocast = trainers[0].autocast
        loss_sum, count = torch.zeros(len(trainers), device=self.device), 0
        for u in range(u0, u1):
            lr = cfg.lr_at(u)
            for g in self.opt.param_groups:
                g["lr"] = lr
            first = u * spu
            streams = [train_batches(t.data, unit_batches(n, cfg.batch_size, cfg.unit, u, t.seed), self.device,
                                     t.seed, first, cfg.num_workers, cfg.data_on_device) for t in trainers]
            for i, pairs in enumerate(zip(*streams)):
                x = torch.stack([p[0] for p in pairs])
                y = [p[1] for p in pairs]
                if autocast:
                    with autocast():
                        logits = self._forward(x)
                else:
                    logits = self._forward(x)
                # each seed's own criterion (its own CDB weights), reduced exactly as in its separate run
                losses = torch.stack([t.criterion(logits[s], y[s], None) for s, t in enumerate(trainers)])
                bad = ~torch.isfinite(losses)
                if bad.any():
                    s = int(bad.nonzero()[0])
                    raise CdbError(f"training loss of seed {trainers[s].seed} became {losses[s].item()} at step "
                                   f"{first + i}; lower trainer.lr or check the loss settings")
                self.opt.zero_grad(set_to_none=True)
                losses.sum().backward()  # the seeds share no parameter, so each gets its own gradient
                self.opt.step()
                loss_sum += losses.detach()
                count += 1
                bar.update(1)
        return (loss_sum / max(count, 1)).tolist()


# ---- command line ------------------------------------------------------------------------------------------
def parse_seeds(spec: str) -> list[int]:
    """'0-9' (inclusive), '0,3,7', '5' or 'range(10)' / 'range(2,5)' -> list of seeds."""
    spec = spec.strip()
    m = re.fullmatch(r"range\((\d+)(?:,\s*(\d+))?\)", spec)
    if m:
        a, b = (0, int(m[1])) if m[2] is None else (int(m[1]), int(m[2]))
        seeds = list(range(a, b))
    else:
        seeds = []
        for part in spec.split(","):
            m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
            if not m:
                raise ConfigError(f"seeds={spec!r} is not allowed: e.g. seeds=0-9, seeds=0,1,2 or seeds='range(10)'")
            seeds += list(range(int(m[1]), int(m[2] or m[1]) + 1))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds={spec!r} is not allowed: a non-empty list of distinct seeds, e.g. seeds=0-9")
    return seeds


def compose_runs(overrides: list[str], seeds: list[int]):
    """(task config, run directory) for each seed, exactly as `cdb-run <overrides> seed=<s>` composes them."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from ..cli import _check_group_choices, config_dir

    _check_group_choices(overrides)
    if any(o.split("=", 1)[0].lstrip("+~") == "seed" for o in overrides):
        raise ConfigError("give the seeds as seeds=..., not seed=...")
    out = []
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="cli"):
        for s in seeds:
            cfg = compose("config", overrides=[*overrides, f"seed={s}"], return_hydra_config=True)
            HydraConfig.instance().set_config(cfg)
            run_dir = OmegaConf.to_container(cfg.hydra.run, resolve=True)["dir"]
            with open_dict(cfg):
                del cfg["hydra"]
            out.append((cfg, run_dir))
    return out


def run_batched(overrides: list[str], seeds: list[int], vectorize: bool | None = None) -> list[dict]:
    """Build one Trainer per seed (writing config.yaml and data.json as cdb-run does) and train them batched."""
    from ..cli import build_trainer

    runs = compose_runs(overrides, seeds)
    trainers = [build_trainer(cfg, run_dir) for cfg, run_dir in runs]
    resume = bool(runs[0][0].resume)
    return BatchedSeeds(trainers, vectorize).fit(resume=resume)


def main(argv: list[str] | None = None) -> None:
    """`cdb-sweep seeds=0-9 [vmap=auto|true|false] [cdb-run overrides]`: one setting's seeds as one batched model."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(main.__doc__ + "\n\nWrites the run directories `cdb-run [overrides] seed=<s>` would write. "
              "vmap=auto vectorises on GPUs only. See docs/distributed.md.")
        return
    ours = ("seeds=", "vmap=")
    seeds_args = [a for a in argv if a.startswith("seeds=")]
    vmap_args = [a.split("=", 1)[1] for a in argv if a.startswith("vmap=")]
    overrides = [a for a in argv if not a.startswith(ours)]
    try:
        if len(seeds_args) != 1:
            raise ConfigError("give the seeds once, e.g. seeds=0-9")
        if any(a in ("-m", "--multirun") for a in overrides):
            raise ConfigError("cdb-sweep trains the seeds of one setting: no -m; loop over settings in the shell")
        choice = vmap_args[-1].lower() if vmap_args else "auto"
        if choice not in ("auto", "true", "false"):
            raise ConfigError(f"vmap={choice!r} is not allowed: auto, true or false")
        seeds = parse_seeds(seeds_args[0].split("=", 1)[1])
        metrics = run_batched(overrides, seeds, None if choice == "auto" else choice == "true")
    except CdbError as exc:
        print(f"cdb-sweep: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for s, m in zip(seeds, metrics):
        print(f"seed={s}: {result_line(m)}")


if __name__ == "__main__":
    main()
