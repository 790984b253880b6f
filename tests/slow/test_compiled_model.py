"""torch.compile (slow) changes how the trainer computes, not what: the compiled model trains the same weights as
the default path (the tiny run of helpers.training; the other speed settings: tests/unit/train/
test_speed_settings.py)."""
from __future__ import annotations

import pytest
import torch

from helpers.training import train_tiny as _train


@pytest.mark.slow
def test_compiled_model_trains_the_same_weights(tmp_path):
    ref = _train(tmp_path / "a")
    comp = _train(tmp_path / "b", compile=True)
    for (k, a), b in zip(comp.model.state_dict().items(), ref.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)
