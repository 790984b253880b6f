"""Launch paths: Hydra launcher presets compose, run-time settings stay out of run names, torchrun end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from cdb.cli import config_dir

REPO = Path(__file__).resolve().parent.parent


def _compose(overrides):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def test_local_parallel_preset_is_joblib_with_two_jobs():
    launcher = _compose(["hydra/launcher=local2"]).hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert launcher.n_jobs == 2 and launcher.prefer == "processes"


def test_slurm_preset_is_submitit_with_one_task_per_run():
    launcher = _compose(["hydra/launcher=slurm", "hydra.launcher.partition=gpu"]).hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (1, 1, 1)
    assert launcher.partition == "gpu"


def test_sweeps_launch_through_the_pack_launcher_and_pack_stays_out_of_the_run_name():
    cfg = _compose(["pack=8", "seed=3", "loss=ce"])
    assert cfg.hydra.launcher._target_ == "hydra_plugins.cdb_pack_launcher.pack_launcher.PackLauncher"
    assert cfg.hydra.launcher.n_jobs == 1 and cfg.pack == 8
    assert cfg.hydra.job.override_dirname == "loss=ce"  # the same run directory with or without packing
    assert _compose([]).pack == "auto"


def test_runtime_settings_compose_with_the_preset_and_stay_out_of_the_run_name():
    cfg = _compose(["trainer.devices=2", "trainer.channels_last=true", "trainer.amp=true", "loss=ce"])
    assert cfg.trainer.devices == 2 and cfg.trainer.batch_size == 100  # runtime keys beside the MNIST preset's
    # the number of processes and the memory layout do not change the experiment; bf16 does, so it names the run
    assert cfg.hydra.job.override_dirname == "loss=ce,trainer.amp=true"


@pytest.mark.slow
def test_torchrun_two_processes_end_to_end(mnist_dir, tmp_path):
    """`torchrun --nproc_per_node=2 -m cdb.cli ...` equals `python -m cdb.cli ...` (rank 0 writes everything once)."""
    args = [f"data_root={mnist_dir}", "dataset.val_per_class=100", "dataset.test_per_class=100",
            "trainer.unit=step", "trainer.length=20", "trainer.eval_every=10", "trainer.lr=0.05",
            "trainer.progress=false", "trainer.device=cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    "-m", "cdb.cli", *args, f"output_root={tmp_path / 'ddp'}"], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=600)
    subprocess.run([sys.executable, "-m", "cdb.cli", *args, f"output_root={tmp_path / 'one'}"], cwd=REPO, env=env,
                   check=True, capture_output=True, timeout=600)
    (ddp,), (one,) = (list((tmp_path / k).rglob("metrics.json")) for k in ("ddp", "one"))
    assert ddp.parent.relative_to(tmp_path / "ddp") == one.parent.relative_to(tmp_path / "one")
    a, b = json.loads(ddp.read_text()), json.loads(one.read_text())
    assert a["test"]["per_class_accuracy"] == b["test"]["per_class_accuracy"]
    assert a["final_weights"] == b["final_weights"]
    logs = [[json.loads(x) for x in (p.parent / "log.jsonl").read_text().splitlines()] for p in (ddp, one)]
    assert [r["val_class_accuracy"] for r in logs[0]] == [r["val_class_accuracy"] for r in logs[1]]
    assert len(logs[0]) == 2  # one row per validation: rank 1 wrote nothing
