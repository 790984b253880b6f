"""Batched seeds (cdb-sweep): S LeNet-5 runs trained as one vmapped model give each seed its separate run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cdb.errors import ConfigError
from cdb.train.batched import BatchedSeeds, compose_runs, parse_seeds

SEEDS = [0, 1, 2]


def _overrides(root, out):
    # 40 steps, validation every 10; CE for the first 20 (CDB warm-up), CDB weights from step 30's validation on
    return [f"data_root={root}", f"output_root={out}", "dataset.majority_ratio=0.6", "dataset.val_per_class=150",
            "dataset.test_per_class=100", "loss=cdb", "loss.warmup=2", "loss.floor=0.05", "trainer.unit=step",
            "trainer.length=40", "trainer.eval_every=10", "trainer.lr=0.03", "trainer.device=cpu",
            "trainer.progress=false"]


def _log(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def separate(mnist_dir, tmp_path_factory):
    """The three seeds trained one by one, as cdb-run trains them."""
    from cdb.cli import build_trainer

    torch.set_num_threads(1)
    runs = compose_runs(_overrides(mnist_dir, tmp_path_factory.mktemp("separate")), SEEDS)
    return [d for _, d in runs], [build_trainer(cfg, d).fit() for cfg, d in runs]


@pytest.fixture(scope="module", params=[True, False], ids=["vmap", "loop"])
def runs(request, mnist_dir, tmp_path_factory, separate):
    """The same three seeds trained batched (vmap, or one after another through stacked parameters)."""
    from cdb.cli import build_trainer

    batched = compose_runs(_overrides(mnist_dir, tmp_path_factory.mktemp("batched")), SEEDS)
    metrics = BatchedSeeds([build_trainer(cfg, d) for cfg, d in batched], vectorize=request.param).fit()
    return [d for _, d in batched], metrics, *separate


def test_each_seed_equals_its_separate_run(runs):
    dirs, metrics, ref_dirs, ref = runs
    for d, m, rd, r in zip(dirs, metrics, ref_dirs, ref):
        a, b = _log(d), _log(rd)
        assert [row["unit"] for row in a] == [10, 20, 30, 40]
        for ra, rb in zip(a, b):
            assert ra["val_class_accuracy"] == rb["val_class_accuracy"]
            assert ra["weights"] == rb["weights"] and ra["tau"] == rb["tau"]
            assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-4)
        assert m["test"]["per_class_accuracy"] == r["test"]["per_class_accuracy"]
        assert m["final_weights"] == r["final_weights"]
        mine = torch.load(Path(d) / "checkpoints/last.pt", weights_only=True)
        theirs = torch.load(Path(rd) / "checkpoints/last.pt", weights_only=True)
        assert mine.keys() == theirs.keys() and mine["unit"] == theirs["unit"] == 40
        # weights are O(0.1): 1e-4 absolute is float rounding grown over 40 steps (vmapped convolutions sum in
        # another order), far below what one step of lr 0.03 moves them
        for k, v in theirs["model"].items():
            torch.testing.assert_close(mine["model"][k], v, rtol=1e-4, atol=1e-4)
        for i, st in theirs["optimizer"]["state"].items():  # SGD momentum too: a batched run resumes as a normal one
            torch.testing.assert_close(mine["optimizer"]["state"][i]["momentum_buffer"], st["momentum_buffer"],
                                       rtol=1e-4, atol=1e-4)


def test_seeds_really_differ_and_the_weights_really_move(runs):
    dirs = runs[0]
    finals = [torch.load(Path(d) / "checkpoints/last.pt", weights_only=True)["model"] for d in dirs]
    k = next(iter(finals[0]))
    assert not torch.equal(finals[0][k], finals[1][k])
    rows = [row for d in dirs for row in _log(d)]
    assert any(len(set(row["weights"])) == 2 for row in rows)  # CDB weighting took effect
    assert any(0 < a < 100 for row in rows for a in row["val_class_accuracy"])  # predictions are not all-or-nothing


def test_run_directories_are_the_ones_cdb_run_writes(runs, tmp_path):
    dirs = runs[0]
    for s, d in zip(SEEDS, dirs):
        assert Path(d).name == f"seed={s}"
        assert Path(d).parent.name == ("dataset.majority_ratio=0.6,dataset.test_per_class=100,"
                                       "dataset.val_per_class=150,loss.floor=0.05,loss.warmup=2,loss=cdb,"
                                       "trainer.eval_every=10,trainer.length=40,trainer.lr=0.03,trainer.unit=step")
        assert (Path(d) / "config.yaml").exists() and (Path(d) / "metrics.json").exists()


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,4-5,9") == [1, 4, 5, 9]
    assert parse_seeds("range(3)") == [0, 1, 2]
    assert parse_seeds("range(2,4)") == [2, 3]
    for bad in ("", "a", "1,1", "3-"):
        with pytest.raises(ConfigError, match="seeds="):
            parse_seeds(bad)


def test_models_with_batchnorm_are_refused(tmp_path):
    from cdb.data.base import DatasetSplits, TensorSplit
    from cdb.losses import build_criterion
    from cdb.train.loop import Trainer, TrainerConfig

    split = TensorSplit(torch.zeros(4, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]))
    data = DatasetSplits("t", split, split, split, 2, ["a", "b"], (1, 4, 4))
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                                torch.nn.Linear(8, 2))
    crit = build_criterion({"base": "ce", "weighting": "none"}, 2, data.class_counts)
    trainer = Trainer(model, data, crit, TrainerConfig(device="cpu", progress=False), tmp_path)
    with pytest.raises(ConfigError, match="BatchNorm"):
        BatchedSeeds([trainer])


def test_a_batched_run_resumes_batched(mnist_dir, tmp_path, separate):
    """Stop the three seeds after 20 steps, resume all of them to 40: the same runs as uninterrupted ones."""
    from cdb.cli import build_trainer

    runs = compose_runs(_overrides(mnist_dir, tmp_path), SEEDS)
    for cfg, _ in runs:
        cfg.trainer.milestones = list(cfg.trainer.milestones)  # the 40-step run's schedule (it follows the length)
        cfg.trainer.length = 20
    BatchedSeeds([build_trainer(cfg, d) for cfg, d in runs], vectorize=False).fit()
    assert [row["unit"] for row in _log(runs[0][1])] == [10, 20]
    runs = compose_runs(_overrides(mnist_dir, tmp_path), SEEDS)  # length 40 again, same run directories
    metrics = BatchedSeeds([build_trainer(cfg, d) for cfg, d in runs], vectorize=False).fit(resume=True)
    for (_, d), m, rd, r in zip(runs, metrics, *separate):
        assert [row["val_class_accuracy"] for row in _log(d)] == [row["val_class_accuracy"] for row in _log(rd)]
        assert [row["weights"] for row in _log(d)] == [row["weights"] for row in _log(rd)]
        assert m["test"]["per_class_accuracy"] == r["test"]["per_class_accuracy"]


def test_cli_errors_are_one_line(capsys):
    from cdb.train.batched import main

    with pytest.raises(SystemExit) as e:
        main(["seeds=1,1", "loss=ce"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cdb-sweep: error: seeds='1,1' is not allowed") and "\n" not in err
