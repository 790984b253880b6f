"""EGTEA end to end with the real 3D-ResNeXt-101 (slow): one epoch on tiny clips, and the one line a run gets when
the Kinetics-pretrained weights are missing. (The same pipeline with a small 3D-ResNeXt:
tests/cli/test_long_tail_runs.py.)"""
from __future__ import annotations

import pytest

from helpers import QUICK, cdb_run
from helpers.datasets import write_egtea
from helpers.egtea import E2E, E2E_CLIPS, check_egtea_run


@pytest.mark.slow
def test_end_to_end_resnext3d_101(tmp_path):
    """The real 3D-ResNeXt-101 (48M parameters, from scratch) for one epoch on 4 clips at 16x16 (~20 s).

    At 16x16 with batches of 2, the deep stages' BatchNorm normalises 2 values per channel and the first step's
    gradients reach ~1e13 (measured), so at the recipe's lr the model diverges to NaN outputs (which cdb-run
    now reports as an error). A tiny lr keeps this pipeline check of the real architecture finite."""
    write_egtea(tmp_path / "data", E2E_CLIPS, size=(20, 20))
    res = cdb_run(tmp_path, *E2E, "trainer.lr=1e-15")
    assert res.returncode == 0, res.stderr[-3000:]
    check_egtea_run(tmp_path)


@pytest.mark.slow
def test_missing_pretrained_weights_say_where_to_get_them(tmp_path):
    write_egtea(tmp_path / "data", E2E_CLIPS, size=(8, 8))
    res = cdb_run(tmp_path, "dataset=egtea", *QUICK)
    assert res.returncode == 2
    assert "pretrained/resnext-101-kinetics.pth is missing" in res.stderr and "Traceback" not in res.stderr
