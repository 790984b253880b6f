"""A checkpoint belongs to its run: a copied or incomplete checkpoint is refused in one line,
a gap in log.jsonl is said, and an unforeseen error in one run of a pack stops that run only (item 2)."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from cdb.build import fingerprint
from cdb.core.errors import CdbError
from cdb.data.base import DatasetSplits, TensorSplit
from cdb.losses import build_criterion
from cdb.models.lenet import LeNet5
from cdb.rundir import LAST, LOG, settings_of
from cdb.train.config import TrainerConfig
from cdb.train.loop import fit, train_alone
from cdb.train.run import RunState, validation_units
from helpers import compose, read_log


def _data(seed: int, n: int = 60):
    g = torch.Generator().manual_seed(seed)
    split = TensorSplit(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
                        torch.randint(0, 2, (n,), generator=g))
    return DatasetSplits("t", split, split, split, 2, ["a", "b"], (1, 28, 28), (0.5,), (0.25,))


def _run(root: Path, length: int, settings: dict | None, seed: int = 0) -> RunState:
    data = _data(seed)
    torch.manual_seed(seed)
    tc = TrainerConfig(unit="step", length=length, eval_every=2, batch_size=20, lr=0.05, device="cpu",
                       progress=False, milestones=[])
    return RunState(LeNet5(2), data, build_criterion({"base": "ce"}, 2, data.class_counts), tc, root, seed=seed,
                    settings=settings)


def test_a_checkpoint_copied_from_another_run_is_refused_naming_the_difference(tmp_path):
    long_settings, short_settings = {"trainer.length": 6, "seed": 0}, {"trainer.length": 4, "seed": 0}
    train_alone(_run(tmp_path / "long", 6, long_settings))
    short = _run(tmp_path / "short", 4, short_settings)
    train_alone(short)
    (tmp_path / "short" / "metrics.json").unlink()                      # an interrupted short run ...
    (tmp_path / "short" / LAST).write_bytes((tmp_path / "long" / LAST).read_bytes())  # ... given the long one's
    with pytest.raises(CdbError, match=r"belongs to another run: trainer.length is 6 there and 4 here"):
        train_alone(_run(tmp_path / "short", 4, short_settings), resume=True)


def test_a_checkpoint_that_spells_a_setting_by_its_record_name_resumes(tmp_path):
    """A checkpoint written under dataset.input_scale (cdb.rundir.names) is the same run as dataset.normalize."""
    recorded = {"trainer.length": 4, "dataset.input_scale": "unit", "loss.name": "cdb_quick"}
    now = {"trainer.length": 4, "dataset.normalize": "unit", "loss.name": "cdb_stabilised"}
    train_alone(_run(tmp_path, 2, recorded))
    (tmp_path / "metrics.json").unlink()                                 # stopped after unit 2 of 4
    resumed = _run(tmp_path, 4, now)
    train_alone(resumed, resume=True)
    assert [row["unit"] for row in read_log(tmp_path)] == [2, 4]                 # resumed, not started over
    with pytest.raises(CdbError, match=r"dataset.normalize is 'unit' there and 'standard' here"):
        (tmp_path / "metrics.json").unlink()
        train_alone(_run(tmp_path, 4, {**now, "dataset.normalize": "standard"}), resume=True)


def test_a_checkpoint_without_its_keys_is_refused(tmp_path):
    state = _run(tmp_path, 4, None)
    train_alone(state)
    torch.save({"unit": 4}, tmp_path / LAST)
    with pytest.raises(CdbError, match=r"lacks 'model', 'optimizer', 'weighting', 'best', 'torch_rng'"):
        train_alone(_run(tmp_path, 4, None), resume=True)


def test_the_fingerprint_ignores_speed_and_place_but_not_what_is_computed():
    a = fingerprint(compose(["loss=ce"]))
    assert fingerprint(compose(["loss=ce", "threads=1", "trainer.channels_last=true", "trainer.progress=false",
                                "data_root=/elsewhere", "trainer.select=best"])) == a
    b = fingerprint(compose(["loss=ce", "trainer.lr=0.5"]))
    assert b != a and [k for k in a if a[k] != b[k]] == ["trainer.lr"]
    assert settings_of({"seed": 3, "trainer": {"lr": 1, "device": "cpu"}, "resume": True}) == \
        {"seed": 3, "trainer.lr": 1}


def test_a_resume_over_a_truncated_log_says_so(tmp_path, caplog):
    first = _run(tmp_path, 8, None)
    monkey = first.after_units

    def stop_at_4(*a, **k):
        row = monkey(*a, **k)
        if first.unit == 4:
            raise KeyboardInterrupt
        return row
    first.after_units = stop_at_4
    with pytest.raises(CdbError, match="interrupted"):
        train_alone(first)
    (tmp_path / LOG).write_text("")                                     # log.jsonl emptied (or deleted)
    with caplog.at_level(logging.WARNING):
        train_alone(_run(tmp_path, 8, None), resume=True)
    assert "log.jsonl holds 0 of the 2 validations up to unit 4" in caplog.text


def test_validation_units_follow_the_loop():
    cfg = TrainerConfig(unit="step", length=10, eval_every=4)
    assert validation_units(cfg, 10) == [4, 8, 10] and validation_units(cfg, 8) == [4, 8]


def test_an_unforeseen_error_stops_one_run_of_a_pack_only(tmp_path):
    runs = [_run(tmp_path / f"r{i}", 4, None, seed=i) for i in range(2)]

    def broken(resume=False):
        raise ValueError("something nobody foresaw")
    runs[0].begin = broken
    out = fit(runs)
    assert isinstance(out[0], ValueError) and out[1]["status"] == "complete"
