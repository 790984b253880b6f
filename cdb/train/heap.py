"""Keep freed activation memory in the process (glibc's malloc), so a step does not map it from the kernel again.

By default glibc serves every allocation above its mmap threshold (128 KiB, rising to 32 MiB as it sees large
blocks freed) with a fresh mmap and gives it back with munmap on free, and trims the top of the heap above 128 KiB.
A training step allocates and frees the same large activation buffers every step, so on CPU each step pays
page faults for them again: at K = 70 runs in a pack, about 1.2 M minor faults and 1.8 s of kernel time a step
(docs/performance.md). `keep_heap()` tells glibc, through mallopt, to serve large blocks from the heap
(M_MMAP_MAX = 0), never to trim it below M_TRIM_THRESHOLD and to grow it by M_TOP_PAD at a time: after the first
step the buffers are reused from the heap, and the process keeps its peak memory until it exits. The cost is
memory: glibc's bins settle only after a few steps (torch's aligned allocations do not fit a freed chunk of the
same size at first), so a process can hold a few times its largest activation buffers (tests/unit/train/
test_freed_memory_stays_in_the_process.py: 64 MiB buffers settle after about 9 rounds, holding about 0.5 GiB).

It changes no result (only where memory comes from). It acts on Linux with glibc only and is a no-op elsewhere
(macOS, Windows, musl). Opt out with CDB_KEEP_HEAP=0 in the environment (e.g. to give memory back between the
runs of a long-lived process). cdb-run calls it at start-up, in every pack's process, and scripts/bench.py too.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys

ENV = "CDB_KEEP_HEAP"
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4  # <malloc.h>
SETTINGS = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 1 << 30, M_TOP_PAD: 64 << 20}
NAMES = {M_MMAP_MAX: "M_MMAP_MAX", M_TRIM_THRESHOLD: "M_TRIM_THRESHOLD", M_TOP_PAD: "M_TOP_PAD"}

_done: dict[str, int] | None = None


def wanted(env=os.environ) -> bool:
    """Whether keep_heap acts: unless CDB_KEEP_HEAP is 0, false, no or off."""
    return env.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def glibc() -> bool:
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def keep_heap() -> dict[str, int]:
    """Apply the settings once per process; returns what was set ({} when opted out or not glibc)."""
    global _done
    if _done is not None:
        return _done
    _done = {}
    if not (wanted() and glibc()):
        return _done
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return _done
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    for param, value in SETTINGS.items():
        if mallopt(param, value) == 1:  # mallopt returns 1 on success
            _done[NAMES[param]] = value
    return _done
