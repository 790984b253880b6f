"""What computed a run: the software and the processor's instruction set, recorded in its checkpoints and metrics.

The same code, settings and seed repeat a CPU run bit for bit on one machine, but PyTorch picks its CPU kernels by
the instruction set the processor offers (AVX-512, AVX2, ...), and kernels of different width round differently in
the last bits; a feedback loop such as CDB-CE's weights can carry such a difference into a few test images. So every
run records, for each session that trained part of it, the unit that session started from and the machine it ran on
(`trained_on` in metrics.json). No host name and no path: records are committed under results/.
"""
from __future__ import annotations

import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    """The processor's model name ('AMD EPYC 9554 64-Core Processor'), or what the platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: torch.device) -> dict:
    """The software and hardware that decide a run's last bits on `device`."""
    out = {
        "torch": str(torch.__version__),  # a str subclass, which weights_only loading refuses
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),  # the kernels ATen dispatches to
        "threads": torch.get_num_threads(),
        "device": device.type,
    }
    if device.type == "cuda":
        out["gpu"] = str(torch.cuda.get_device_name(device))
        out["cuda"] = str(torch.version.cuda)
    return out
