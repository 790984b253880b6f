"""resume=true continues an interrupted run to exactly the result of an uninterrupted one (CPU, same seed)."""
import json

import pytest
import torch

from cdb.cli import train_from_config
from cdb.errors import CdbError
from cdb.train.io import load_checkpoint
from cdb.train.loop import Trainer
from helpers import compose

OVERRIDES = ["loss=cdb", "trainer.unit=step", "trainer.length=40", "trainer.eval_every=5", "trainer.lr=0.01",
             "trainer.milestones=[20]", "trainer.progress=false", "dataset.majority_ratio=0.98", "seed=4"]


def _cfg(mnist_dir, extra=()):
    return compose([*OVERRIDES, f"data_root={mnist_dir}", *extra])


# l2rw draws validation batches inside every step: those must also continue where they stopped
@pytest.mark.parametrize("extra", [[], ["loss=l2rw", "trainer.length=30"]], ids=["cdb", "l2rw"])
def test_resume_equals_uninterrupted(mnist_dir, tmp_path, monkeypatch, extra):
    full = train_from_config(_cfg(mnist_dir, extra), tmp_path / "full")

    original = Trainer.after_units

    def interrupt_at_25(self, *a, **k):
        row = original(self, *a, **k)
        if self.unit == 25:
            raise KeyboardInterrupt
        return row

    monkeypatch.setattr(Trainer, "after_units", interrupt_at_25)
    with pytest.raises(CdbError, match="resume=true"):
        train_from_config(_cfg(mnist_dir, extra), tmp_path / "cut")
    monkeypatch.setattr(Trainer, "after_units", original)
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["unit"] == 25
    resumed = train_from_config(_cfg(mnist_dir, [*extra, "resume=true"]), tmp_path / "cut")

    assert resumed["test"] == full["test"]
    assert resumed["checkpoints"]["best"]["unit"] == full["checkpoints"]["best"]["unit"]
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    log_a = [json.loads(x) for x in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    assert strip(log_a) == strip(log_b)  # no duplicated or missing rows after the resume


def test_same_seed_same_result_on_cpu(mnist_dir, tmp_path):
    a = train_from_config(_cfg(mnist_dir, ["trainer.length=10"]), tmp_path / "a")
    b = train_from_config(_cfg(mnist_dir, ["trainer.length=10"]), tmp_path / "b")
    assert a["test"] == b["test"]
    pa = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    pb = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
