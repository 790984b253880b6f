"""trainer.tensorboard=true: every validation's training loss, lr, class-wise validation accuracy,
class weights and tau, and at the end the test metrics with the run's settings as hyper-parameters, read back with
TensorBoard's own reader (EventAccumulator) and checked against the run's log.jsonl and metrics.json; one log per
run in a pack and under DDP (rank 0); a resumed run's curves have one point per validation; a missing package is
one line. The tests that read event files skip only when the tensorboard package is absent."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from cdb.core.errors import ConfigError
from cdb.data.base import DatasetSplits, TensorSplit
from cdb.losses import build_criterion
from cdb.models.lenet import LeNet5
from cdb.train.config import TrainerConfig
from cdb.train.loop import fit
from cdb.train.pack import pack_refusal
from cdb.train.run import RunState
from helpers import REPO, cdb_run, read_log, run_dirs
from helpers.faults import TINY

CDB = yaml.safe_load((REPO / "configs" / "loss" / "cdb.yaml").read_text())


def _events(run_dir: Path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(Path(run_dir) / "tensorboard"))
    acc.Reload()
    return acc


def _scalars(acc, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _hparams(acc) -> dict:
    """The hyper-parameters of the run's hparams session (TensorBoard's plugin data, decoded)."""
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    assert metadata.EXPERIMENT_TAG in content
    data = plugin_data_pb2.HParamsPluginData.FromString(content[metadata.SESSION_START_INFO_TAG])
    out = {}
    for k, v in data.session_start_info.hparams.items():
        out[k] = getattr(v, v.WhichOneof("kind"))
    return out


def _splits(seed: int = 0) -> DatasetSplits:
    """60 random 28x28 images of two classes: validation accuracy lands between 0 and 100, so CDB weights move."""
    g = torch.Generator().manual_seed(seed)
    split = TensorSplit(torch.randint(0, 256, (60, 1, 28, 28), dtype=torch.uint8, generator=g), torch.arange(60) % 2)
    return DatasetSplits("t", split, split, split, 2, ["four", "nine"], (1, 28, 28), (0.5,), (0.25,))


def _state(run_dir: Path, seed: int = 0, length: int = 4, settings: dict | None = None, **trainer) -> RunState:
    data = _splits(seed)
    torch.manual_seed(seed)
    crit = build_criterion({k: v for k, v in CDB.items() if k not in ("name", "label")}, 2, data.class_counts)
    cfg = TrainerConfig(unit="step", length=length, eval_every=1, batch_size=20, lr=0.05, milestones=[3],
                        device="cpu", progress=False, tensorboard=True, **trainer)
    return RunState(LeNet5(2), data, crit, cfg, run_dir, seed=seed, settings=settings)


def _check_against_log(run_dir: Path, acc) -> list[dict]:
    """Every validation's scalars equal the run's own log.jsonl row (float32, TensorBoard's storage)."""
    rows = read_log(run_dir)
    steps = [r["unit"] for r in rows]
    approx = lambda xs: pytest.approx(xs, rel=1e-6, abs=1e-7)
    assert _scalars(acc, "train/loss") == [(u, approx(r["train_loss"])) for u, r in zip(steps, rows)]
    assert _scalars(acc, "train/lr") == [(u, approx(r["lr"])) for u, r in zip(steps, rows)]
    assert _scalars(acc, "tau") == [(u, approx(r["tau"])) for u, r in zip(steps, rows)]
    for c, name in enumerate(("four", "nine")):
        assert _scalars(acc, f"val/class_accuracy/{name}") == [(u, approx(r["val_class_accuracy"][c]))
                                                                for u, r in zip(steps, rows)]
        assert _scalars(acc, f"weights/{name}") == [(u, approx(r["weights"][c])) for u, r in zip(steps, rows)]
    bal = _scalars(acc, "val/balanced_accuracy")
    assert bal == [(u, approx(sum(r["val_class_accuracy"]) / 2)) for u, r in zip(steps, rows)]
    return rows


def test_a_run_logs_every_validation_and_its_test_metrics_with_its_settings(tmp_path):
    state = _state(tmp_path, settings={"seed": 0, "trainer.lr": 0.05, "loss.tau": "dynamic",
                                       "trainer.milestones": [3], "model.name": None})
    fit([state])
    acc = _events(tmp_path)
    rows = _check_against_log(tmp_path, acc)
    assert [r["unit"] for r in rows] == [1, 2, 3, 4]
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 1   # curves and hparams: one file
    # independent of the logged rows: the schedule (x0.1 after step 3), and CDB-CE's weights summing to C = 2
    assert [v for _, v in _scalars(acc, "train/lr")] == pytest.approx([0.05, 0.05, 0.05, 0.005])
    for u in range(1, 5):
        w = [dict(_scalars(acc, f"weights/{n}"))[u] for n in ("four", "nine")]
        assert sum(w) == pytest.approx(2.0, rel=1e-6)
    assert len({v for _, v in _scalars(acc, "weights/four")}) > 1          # the weights did move
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    test = metrics["test"]
    for key in ("error", "accuracy", "macro_recall", "macro_precision", "top1", "n"):
        assert _scalars(acc, f"test/{key}") == [(4, pytest.approx(test[key], rel=1e-6))]
    # the test error is the confusion matrix's, counted here by hand
    cm = metrics["checkpoints"]["last"]["test_confusion"]
    assert test["error"] == pytest.approx(100.0 * (1 - (cm[0][0] + cm[1][1]) / 60))
    assert _hparams(acc) == {"seed": 0.0, "trainer.lr": 0.05, "loss.tau": "dynamic", "trainer.milestones": "[3]",
                             "model.name": "null"}


def test_without_recorded_settings_the_trainer_settings_and_seed_are_the_hparams(tmp_path):
    state = _state(tmp_path, seed=3, length=1)
    fit([state])
    hp = _hparams(_events(tmp_path))
    assert hp["seed"] == 3 and hp["trainer.batch_size"] == 20 and hp["trainer.unit"] == "step"
    assert hp["trainer.tensorboard"] == 1.0              # a bool is a number to TensorBoard


def test_a_pack_writes_one_log_per_run_into_its_own_directory(tmp_path):
    states = [_state(tmp_path / f"seed={s}", seed=s) for s in (0, 1)]
    assert pack_refusal(states) is None                  # they train as one fused LeNet-5 pack
    fit(states)
    losses = []
    for s in (0, 1):
        acc = _events(tmp_path / f"seed={s}")
        _check_against_log(tmp_path / f"seed={s}", acc)
        losses.append(_scalars(acc, "train/loss"))
    assert losses[0] != losses[1]                        # each run its own curve, not the pack's
    assert not (tmp_path / "tensorboard").exists()


def test_a_resumed_run_drops_what_was_logged_after_its_checkpoint(tmp_path):
    """A session logged units 3-4 past its last checkpoint (unit 2) and was killed: the resumed session's values
    replace them, one point per validation."""
    import time

    fit([_state(tmp_path, length=2)])
    from torch.utils.tensorboard import SummaryWriter

    # sessions are seconds apart (event files sort by their names, which start with the second they were opened)
    time.sleep(1.1)
    with SummaryWriter(str(tmp_path / "tensorboard")) as w:   # what the killed session left behind
        for u in (3, 4):
            w.add_scalar("train/loss", 999.0, u)
    (tmp_path / "metrics.json").unlink()
    time.sleep(1.1)
    state = _state(tmp_path, length=4)
    fit([state], resume=True)
    assert state.start_unit == 2
    acc = _events(tmp_path)
    rows = _check_against_log(tmp_path, acc)
    assert [r["unit"] for r in rows] == [1, 2, 3, 4]
    assert 999.0 not in [v for _, v in _scalars(acc, "train/loss")]


def test_ddp_writes_one_log_from_rank_zero(mnist_dir, tmp_path):
    from helpers.ddp import mnist_cfg, spawn_ddp

    pytest.importorskip("tensorboard")
    spawn_ddp(mnist_cfg(mnist_dir, length=2, tensorboard=True), tmp_path)
    files = sorted((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 1, files                    # one writer, rank 0's: ranks > 0 write nothing
    acc = _events(tmp_path)
    rows = read_log(tmp_path)
    assert _scalars(acc, "train/loss") == [(r["unit"], pytest.approx(r["train_loss"], rel=1e-6)) for r in rows]
    assert [r["unit"] for r in rows] == [1, 2]


def test_cdb_run_writes_the_log_into_the_run_directory(mnist_dir, tmp_path):
    pytest.importorskip("tensorboard")
    r = cdb_run(tmp_path, "loss=cdb", *TINY, "trainer.tensorboard=true", data=mnist_dir)
    assert r.returncode == 0, r.stderr
    (run,) = run_dirs(tmp_path / "out")
    assert "tensorboard" not in str(run.relative_to(tmp_path / "out"))   # a run-time setting: not in the name
    acc = _events(run)
    rows = read_log(run)
    assert [s for s, _ in _scalars(acc, "train/loss")] == [r["unit"] for r in rows] == [1, 2]
    hp = _hparams(acc)
    assert hp["dataset.majority_ratio"] == 0.99 and hp["loss.name"] == "cdb" and "trainer.tensorboard" not in hp
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert _scalars(acc, "test/error") == [(2, pytest.approx(test["error"], rel=1e-6))]


def test_a_missing_package_is_one_line(monkeypatch, mnist_dir, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard", None)        # as if it were not installed
    with pytest.raises(ConfigError) as exc:
        TrainerConfig(tensorboard=True).validate()
    assert str(exc.value) == ("trainer.tensorboard=true needs the tensorboard package, which is not installed: "
                              "pip install 'cdb-loss[tensorboard]' (or pip install tensorboard)")
    TrainerConfig().validate()                                 # off by default: nothing needed
    # as a user meets it: a cdb-run process that cannot import tensorboard
    import subprocess

    from helpers.faults import one_line

    code = "import sys; sys.modules['tensorboard'] = None; from cdb.cli.run import main; main()"
    env_run = subprocess.run([sys.executable, "-c", code, "loss=ce", *TINY, "trainer.tensorboard=true"],
                             cwd=REPO, capture_output=True, text=True, timeout=600,
                             env={**__import__("os").environ, "CDB_OUTPUT_ROOT": str(tmp_path / "out"),
                                  "CDB_DATA_ROOT": str(mnist_dir), "PYTHONPATH": str(REPO)})
    one_line(env_run, "trainer.tensorboard=true needs the tensorboard package")
    assert run_dirs(tmp_path / "out") == []
