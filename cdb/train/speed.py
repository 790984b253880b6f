"""Speed settings of the trainer: bf16 autocast, channels_last, torch.compile, cudnn.benchmark.

Each is off by default: they change float rounding (amp most of all) or
start-up time, never what is computed. docs/distributed.md says when each pays.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch


def memory_format(x: torch.Tensor) -> torch.memory_format:
    """channels_last for 4-D image batches, channels_last_3d for 5-D clips."""
    return torch.channels_last_3d if x.dim() == 5 else torch.channels_last


def configure_backends(cfg, device: torch.device) -> None:
    """cudnn.benchmark picks the fastest convolution algorithm per input shape (GPU only; shapes here are fixed)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(cfg.cudnn_benchmark)


def prepare_model(model: torch.nn.Module, cfg) -> torch.nn.Module:
    """Weights in channels_last layout when asked (in place: parameters keep their identity)."""
    if cfg.channels_last:
        fmt = torch.channels_last_3d if any(q.dim() == 5 for q in model.parameters()) else torch.channels_last
        model.to(memory_format=fmt)  # only 4-D (or 5-D) weights change layout
    return model


def prepare_input(x: torch.Tensor, cfg) -> torch.Tensor:
    if cfg.channels_last and x.dim() in (4, 5):
        return x.contiguous(memory_format=memory_format(x))
    return x


def compile_model(net: torch.nn.Module, cfg) -> torch.nn.Module:
    """torch.compile when asked; the first steps then pay the compilation (tens of seconds)."""
    return torch.compile(net) if cfg.compile else net


def autocast(cfg, device: torch.device) -> Callable[[], contextlib.AbstractContextManager] | None:
    """A factory of bf16 autocast contexts when cfg.amp, else None.

    bf16 keeps float32's exponent range, so no loss scaling is needed; the
    loss itself is computed in float32 (cdb.losses.functional casts logits).
    On CPU autocast works too; it pays on CPUs with bf16 instructions (LeNet-5 with channels_last: 1.10x on
    this project's AVX512-BF16 machine, results/bench.md).
    """
    if not cfg.amp:
        return None
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
