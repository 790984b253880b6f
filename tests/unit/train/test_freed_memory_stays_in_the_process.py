"""cdb.train.heap.keep_heap: after it, a large buffer freed and allocated again costs no new page faults (the kernel
counts them, getrusage reports them); with CDB_KEEP_HEAP=0 it sets nothing and glibc maps the buffer afresh."""
import json
import os
import subprocess
import sys

import pytest

from cdb.train import heap

PROBE = """
import json, resource, torch
from cdb.train.heap import keep_heap
done = keep_heap()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(16):  # warm-up: glibc's bins settle after a few rounds (memalign's chunks do not fit at first)
    torch.ones(64 << 20, dtype=torch.uint8)
before = faults()
for _ in range(10):
    torch.ones(64 << 20, dtype=torch.uint8)  # 64 MiB (above glibc's largest mmap threshold), written, freed
print(json.dumps({"set": done, "faults": faults() - before}))
"""


def probe(keep: str) -> dict:
    env = {**os.environ, heap.ENV: keep, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not heap.glibc(), reason="mallopt is glibc's")
def test_freed_buffers_are_reused_without_page_faults_and_the_opt_out_restores_glibcs_default():
    kept, default = probe("1"), probe("0")
    assert kept["set"] == {"M_MMAP_MAX": 0, "M_TRIM_THRESHOLD": 1 << 30, "M_TOP_PAD": 64 << 20}
    assert default["set"] == {}
    assert default["faults"] > 10 * 1000  # every allocation maps its pages again (1 fault per 4 KiB to 32 KiB)
    assert kept["faults"] < default["faults"] / 20  # reused from the heap


def test_the_opt_out_words():
    assert heap.wanted({}) and heap.wanted({heap.ENV: "1"})
    assert not any(heap.wanted({heap.ENV: v}) for v in ("0", "false", "off", "no", " OFF "))
