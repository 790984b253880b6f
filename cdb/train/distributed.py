"""Data-parallel training on PyTorch DDP: process-group set-up (torchrun or self-spawned), sharding, reductions.

Equivalence with one process is the design goal. The loop's batch order is a
pure function of (seed, step); every rank builds the same global batch and
keeps a disjoint contiguous slice of it (`Shard`), so the global batch is the
single-process one and nothing like DistributedSampler.set_epoch is needed.
Each rank's loss is its share of the *global* batch's loss (`Dist.reduce_loss`), so
DDP's gradient average equals the single-process gradient up to float
summation order, uneven slices and uneven last batches included. Evaluation
splits are cut into disjoint contiguous shards (no padding, so no sample is
counted twice) and the confusion counts are summed over ranks: every rank
then sees the same class-wise accuracy and computes the same CDB weights.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as tdist
import torch.multiprocessing as mp
from omegaconf import OmegaConf
from torch.multiprocessing.spawn import ProcessException
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import Subset

from cdb.core.errors import CdbError, ConfigError
from cdb.data.base import TensorSplit
from cdb.losses.functional import reduce_weighted
from cdb.rundir.io import atomic_write_json, atomic_write_text
from cdb.train.batches import Shard
from cdb.train.config import check_parallel, resolve_device
from cdb.train.evaluate import EvalResult



@dataclass(frozen=True)
class LaunchEnv:
    """Where this process sits in the job, as torchrun (or a SLURM srun wrapper that sets these) describes it."""

    rank: int
    world_size: int
    local_rank: int


def torchrun_env(environ=None) -> LaunchEnv | None:
    """RANK / WORLD_SIZE / LOCAL_RANK from the environment (torchrun, single or multi node); None when absent."""
    env = os.environ if environ is None else environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        local = int(env.get("LOCAL_RANK", rank))
    except ValueError:
        raise CdbError(f"RANK={env.get('RANK')!r}, WORLD_SIZE={env.get('WORLD_SIZE')!r}, "
                       f"LOCAL_RANK={env.get('LOCAL_RANK')!r} must be integers (set by torchrun)") from None
    if not (0 <= rank < world):
        raise CdbError(f"RANK={rank} is not in [0, WORLD_SIZE={world})")
    return LaunchEnv(rank, world, local)


def is_main_process() -> bool:
    """True unless torchrun says this process has a rank other than 0 (Hydra/print side effects use it)."""
    env = torchrun_env()
    return env is None or env.rank == 0


def hydra_rank_overrides() -> list[str]:
    """Extra Hydra overrides for ranks other than 0 under torchrun: only rank 0 writes .hydra/ and the job log."""
    if is_main_process():
        return []
    return ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]


class Dist:
    """The placement of a run on one of `world_size` data-parallel processes (cdb.train.placement.Local is the
    one-process placement with the same hooks): the loop is the same, only these hooks differ."""

    def __init__(self, rank: int, world_size: int, local_rank: int, device: torch.device, sync_bn: bool = True):
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.device = device
        self.sync_bn = sync_bn
        self._eval_shards: dict[int, tuple[Any, Any]] = {}

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run directory; the others only train and evaluate their shards."""
        return self.rank == 0

    # ---- model -----------------------------------------------------------------------------------------
    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel around `model` (already on self.device); BatchNorm synchronised on GPUs.

        SyncBatchNorm computes batch statistics over the global batch, as one
        process would; PyTorch implements it for GPUs only, so on CPU (gloo)
        BatchNorm models normalise with per-rank statistics (docs/distributed.md).
        """
        if self.sync_bn and self.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # converts in place, shares parameters
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(model, device_ids=ids, output_device=ids[0] if ids else None)

    # ---- data ------------------------------------------------------------------------------------------
    def shard_batches(self, batches: list[torch.Tensor]) -> list[Shard]:
        """This rank's contiguous slice of every global batch (sizes differ by at most one across ranks)."""
        out = []
        for b in batches:
            n = len(b)
            if n < self.world_size:
                raise ConfigError(
                    f"a training batch of {n} samples cannot be split over {self.world_size} processes; "
                    f"choose trainer.batch_size (and, with unit=epoch, a training-set size modulo batch_size) of at "
                    f"least trainer.devices={self.world_size}")
            lo, hi = _bounds(n, self.world_size, self.rank)
            out.append(Shard(b, lo, hi))
        return out

    def shard_split(self, split):
        """A disjoint contiguous part of an evaluation split (no padding: every sample is counted exactly once)."""
        key = id(split)
        if key not in self._eval_shards:  # cached, so an on-device copy of the shard is made only once
            lo, hi = _bounds(len(split), self.world_size, self.rank)
            part = TensorSplit(split.x[lo:hi], split.y[lo:hi]) if isinstance(split, TensorSplit) \
                else Subset(split, range(lo, hi))
            self._eval_shards[key] = (split, part)  # keeps `split` alive so its id is not reused
        return self._eval_shards[key][1]

    # ---- loss ------------------------------------------------------------------------------------------
    def reduce_loss(self, losses: torch.Tensor, weights: torch.Tensor | None, reduction: str,
                    shard: Shard) -> torch.Tensor:
        """This rank's share of the global loss (what the log sums over ranks), with the gradient of world_size
        times that share.

        The reduction is taken over the *global* batch: "mean" divides the
        weighted sum by the global batch size, and "weighted_mean" by the
        global sum of sample weights (one all-reduce). DDP averages gradients
        over ranks, so each share's gradient is scaled by world_size:
        mean_r(world * grad share_r) = grad sum_r share_r = the global loss's gradient.
        """
        if reduction == "weighted_mean" and weights is not None:
            mass = self.all_reduce_sum(weights.detach().sum().to(self.device, losses.dtype))
            mass = mass.clamp_min(torch.finfo(losses.dtype).tiny)
        elif reduction in ("mean", "weighted_mean"):
            mass = float(shard.total)
        else:
            raise ConfigError(f"loss.reduction={reduction!r} is not supported under DDP: mean or weighted_mean")
        return _ScaledGradient.apply(reduce_weighted(losses, weights, reduction, denominator=mass), self.world_size)

    # ---- collectives -----------------------------------------------------------------------------------
    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
        return t

    def reduce_eval(self, res: EvalResult) -> EvalResult:
        """Sum confusion matrices and top-k counts over ranks (counts, never per-rank accuracies, are combined)."""
        ks = sorted(res.topk_correct)
        c = res.confusion.shape[0]
        packed = torch.cat([res.confusion.flatten().long(),
                            torch.tensor([res.topk_correct[k] for k in ks], dtype=torch.long)])
        packed = self.all_reduce_sum(packed.to(self.device)).cpu()
        return EvalResult(packed[: c * c].view(c, c), {k: int(v) for k, v in zip(ks, packed[c * c:])})

    def same_on_all(self, flag: bool, what: str) -> bool:
        """`flag` when every rank has the same one; else a CdbError on every rank (instead of a silent divergence).

        Used for files in the run directory, which only rank 0 writes: every
        rank must see them, i.e. output_root must be on a shared filesystem.
        """
        n = int(self.all_reduce_sum(torch.tensor([int(bool(flag))], device=self.device)).item())
        if n not in (0, self.world_size):
            raise CdbError(f"{what} is visible to {n} of {self.world_size} processes: put output_root on a filesystem "
                           "that every node shares (rank 0 writes the run directory, every rank reads checkpoints)")
        return bool(flag)

    def barrier(self) -> None:
        if self.device.type == "cuda":
            tdist.barrier(device_ids=[self.device.index])
        else:
            tdist.barrier()


class _ScaledGradient(torch.autograd.Function):
    """The identity forward; backward multiplies the gradient by `factor`."""

    @staticmethod
    def forward(ctx, t: torch.Tensor, factor: int) -> torch.Tensor:
        ctx.factor = factor
        return t.view_as(t)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.factor, None


def _bounds(n: int, world: int, rank: int) -> tuple[int, int]:
    """[lo, hi) of part `rank` when n items are cut into `world` contiguous parts differing by at most one."""
    q, r = divmod(n, world)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


def _device_and_backend(device: str, backend: str, local_rank: int) -> tuple[torch.device, str]:
    """The device of this rank (cuda:LOCAL_RANK or cpu) and its backend (NCCL on GPUs, gloo on CPU)."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"trainer.device={device!r} is not allowed with more than one process: auto, cpu or cuda "
                          "(each process takes cuda:LOCAL_RANK)")
    dev = resolve_device(device)  # the one resolver: auto takes the GPU when there is one
    if dev.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"process with LOCAL_RANK={local_rank} has no GPU: this node has "
                              f"{torch.cuda.device_count()}; lower trainer.devices or --nproc_per_node")
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    if backend == "auto":
        backend = "nccl" if dev.type == "cuda" else "gloo"
    if backend == "nccl" and dev.type != "cuda":
        raise ConfigError("trainer.dist_backend='nccl' needs GPUs; use gloo (or auto) on CPU")
    return dev, backend


@contextlib.contextmanager
def process_group(env: LaunchEnv, device: str = "auto", backend: str = "auto", sync_bn: bool = True,
                  init_method: str = "env://"):
    """Join (and afterwards leave) the default process group; yields this rank's Dist."""
    dev, backend = _device_and_backend(device, backend, env.local_rank)
    owns = not tdist.is_initialized()
    if owns:
        kw = {"device_id": dev} if dev.type == "cuda" else {}
        tdist.init_process_group(backend, init_method=init_method, rank=env.rank, world_size=env.world_size, **kw)
    try:
        yield Dist(env.rank, env.world_size, env.local_rank, dev, sync_bn)
    finally:
        if owns and tdist.is_initialized():
            tdist.destroy_process_group()


# ---- entry point used by cdb.build.train_from_config ------------------------------------------------------------
def launch(fn: Callable, cfg, run_dir) -> dict:
    """Run `fn(cfg, run_dir, dist)` in the right processes and return rank 0's result.

    Under torchrun (RANK/WORLD_SIZE set, world > 1): join the process group here.
    Else with trainer.devices = N > 1: spawn N local processes (one per GPU, or N CPU processes with gloo).
    Else: one process, dist=None.
    """
    # every trainer preset starts from TrainerConfig (trainer/base), so these keys are always there, with its defaults
    t = cfg.trainer
    check_parallel(t.devices, t.dist_backend)
    devices, device, backend, sync_bn = int(t.devices), str(t.device), str(t.dist_backend), bool(t.sync_bn)
    env = torchrun_env()
    if env is not None and env.world_size > 1:
        if devices > 1:
            raise ConfigError(f"trainer.devices={devices} spawns processes itself; under torchrun leave it at 1 and "
                              "set the process count with torchrun --nproc_per_node (and --nnodes)")
        with process_group(env, device, backend, sync_bn) as dist:
            return fn(cfg, run_dir, dist)
    if devices > 1:
        container = OmegaConf.to_container(cfg, resolve=True)  # plain data: picklable, no Hydra resolvers needed
        return spawn(fn, container, str(run_dir), devices, device, backend, sync_bn)
    return fn(cfg, run_dir, None)


def spawn(fn: Callable, cfg: dict, run_dir: str, nprocs: int, device: str, backend: str, sync_bn: bool) -> dict:
    """Start `nprocs` processes on this machine that train together; return rank 0's result.

    device, backend and sync_bn are trainer.device, trainer.dist_backend and trainer.sync_bn (their defaults live
    in TrainerConfig only).

    Rendezvous goes through a file store in a private temporary folder (no
    port to pick); results and errors come back as files there (a pipe could
    fill up and block). A CdbError in any rank comes back as a one-line CdbError;
    any other failure keeps its traceback.
    """
    if device in ("cuda", "auto") and torch.cuda.is_available() and torch.cuda.device_count() < nprocs:
        raise ConfigError(f"trainer.devices={nprocs} but this machine has {torch.cuda.device_count()} GPUs")
    tmp = tempfile.mkdtemp(prefix="cdb-ddp-")
    try:
        failure = None
        try:
            mp.spawn(_spawned, args=(fn, cfg, run_dir, nprocs, device, backend, sync_bn, tmp), nprocs=nprocs,
                     join=True)
        except ProcessException as exc:
            failure = exc
        errors = sorted(f for f in os.listdir(tmp) if f.startswith("error-"))
        if errors:
            with open(os.path.join(tmp, errors[0])) as f:
                raise CdbError(f.read()) from None
        if failure is not None:
            raise failure  # not a user error: keep the process's traceback
        result = os.path.join(tmp, "result.json")
        if not os.path.exists(result):
            raise CdbError("the training processes ended without a result from rank 0")
        with open(result) as f:
            return json.load(f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _spawned(rank, fn, cfg, run_dir, world, device, backend, sync_bn, tmp) -> None:
    """Body of one spawned process: threads, process group, fn; leave rank 0's result or any CdbError in `tmp`."""
    if device == "cpu" or not torch.cuda.is_available():
        # share the cores: N processes with all threads each would oversubscribe the CPU
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    try:
        init = "file://" + os.path.join(tmp, "store")
        with process_group(LaunchEnv(rank, world, rank), device, backend, sync_bn, init_method=init) as dist:
            out = fn(OmegaConf.create(cfg), run_dir, dist)
        if rank == 0:
            atomic_write_json(os.path.join(tmp, "result.json"), out)
    except CdbError as exc:
        atomic_write_text(os.path.join(tmp, f"error-{rank}.txt"), str(exc))
        raise SystemExit(2) from None
