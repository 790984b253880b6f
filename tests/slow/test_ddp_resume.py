"""DDP resume (slow): a two-process gloo run stopped after epoch 2 and resumed with resume=true ends exactly where
the one-process run (the `single` fixture, helpers.ddp) ends."""
from __future__ import annotations

import pytest

from helpers.ddp import assert_same_run as _assert_same_run, data_root_of as _data_root, log_rows as _log
from helpers.ddp import mnist_cfg as _cfg, spawn_ddp as _ddp


@pytest.mark.slow
def test_ddp_run_resumes_from_its_checkpoint(single, tmp_path):
    ref_dir, ref_metrics = single
    root = _data_root(ref_dir)
    _ddp(_cfg(root, length=2), tmp_path)
    assert [r["unit"] for r in _log(tmp_path)] == [1, 2]
    cfg = _cfg(root)
    cfg.resume = True
    metrics = _ddp(cfg, tmp_path)
    _assert_same_run(tmp_path, metrics, ref_dir, ref_metrics)
