"""resume=true continues an interrupted run to exactly the result of an uninterrupted one (CPU, same seed),
reading checkpoints/last.pt and training only the units that were missing."""
import pytest
import torch

from cdb.build import train_from_config
from cdb.core.errors import CdbError
from cdb.rundir import io
from cdb.rundir.io import load_checkpoint
from cdb.train.run import RunState
from helpers import compose, read_log

OVERRIDES = ["loss=cdb", "trainer.unit=step", "trainer.length=40", "trainer.eval_every=5", "trainer.lr=0.01",
             "trainer.milestones=[20]", "trainer.progress=false", "dataset.majority_ratio=0.98", "seed=4"]


def _cfg(mnist_dir, extra=()):
    return compose([*OVERRIDES, f"data_root={mnist_dir}", *extra])


# l2rw draws validation batches inside every step: those must also continue where they stopped
@pytest.mark.parametrize("extra", [[], ["loss=l2rw", "trainer.length=30"]], ids=["cdb", "l2rw"])
def test_resume_equals_uninterrupted(mnist_dir, tmp_path, monkeypatch, extra):
    full = train_from_config(_cfg(mnist_dir, extra), tmp_path / "full")

    original = RunState.after_units

    def interrupt_at_25(self, *a, **k):
        row = original(self, *a, **k)
        if self.unit == 25:
            raise KeyboardInterrupt
        return row

    monkeypatch.setattr(RunState, "after_units", interrupt_at_25)
    with pytest.raises(CdbError, match="resume=true"):
        train_from_config(_cfg(mnist_dir, extra), tmp_path / "cut")
    monkeypatch.setattr(RunState, "after_units", original)
    last = tmp_path / "cut" / "checkpoints" / "last.pt"
    assert load_checkpoint(last)["unit"] == 25
    cut_rows = read_log(tmp_path / "cut")
    assert [r["unit"] for r in cut_rows] == [5, 10, 15, 20, 25]

    # spies: which files the resumed run loads, and how many optimizer steps it takes
    loaded, steps = [], []
    monkeypatch.setattr(io, "load_checkpoint", lambda path: loaded.append(str(path)) or load_checkpoint(path))
    sgd_step = torch.optim.SGD.step
    monkeypatch.setattr(torch.optim.SGD, "step", lambda self, *a, **k: steps.append(1) or sgd_step(self, *a, **k))
    resumed = train_from_config(_cfg(mnist_dir, [*extra, "resume=true"]), tmp_path / "cut")
    assert loaded[0] == str(last)                        # the checkpoint of the interrupted run was read first
    length = int(_cfg(mnist_dir, extra).trainer.length)
    assert len(steps) == length - 25                     # only the missing steps were trained (unit = 1 step)
    rows = read_log(tmp_path / "cut")
    assert rows[:5] == cut_rows                          # rows before the cut are the interrupted run's own
    assert [r["unit"] for r in rows[5:]] == list(range(30, length + 1, 5))

    assert resumed["test"] == full["test"]
    assert resumed["checkpoints"]["best"]["unit"] == full["checkpoints"]["best"]["unit"]
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    log_a, log_b = read_log(tmp_path / "full"), rows
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    assert strip(log_a) == strip(log_b)  # no duplicated or missing rows after the resume

    # each session that trained part of a run is recorded with the unit it started from and its machine
    assert [t["from_unit"] for t in full["trained_on"]] == [0]
    assert [t["from_unit"] for t in resumed["trained_on"]] == [0, 25]
    for t in resumed["trained_on"]:
        assert t["torch"] == torch.__version__ and t["device"] == "cpu"
        assert t["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert io.read_json(tmp_path / "cut" / "metrics.json")["trained_on"] == resumed["trained_on"]


def test_same_seed_same_result_on_cpu(mnist_dir, tmp_path):
    a = train_from_config(_cfg(mnist_dir, ["trainer.length=10"]), tmp_path / "a")
    b = train_from_config(_cfg(mnist_dir, ["trainer.length=10"]), tmp_path / "b")
    assert a["test"] == b["test"]
    pa = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    pb = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
