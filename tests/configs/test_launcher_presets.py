"""Launch presets: the Hydra launcher presets compose, and run-time settings (pack size, devices, memory layout)
stay out of run names. (torchrun end to end: tests/slow/test_torchrun.py.)"""
from __future__ import annotations

from helpers import compose


def _compose(overrides):
    return compose(overrides, hydra=True)


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


def test_run_names_leave_out_exactly_the_one_list_of_runtime_keys():
    from cdb.rundir import NAME_EXCLUDED_KEYS, RUNTIME_KEYS

    cfg = _compose(["threads=1", "trainer.progress=false", "trainer.compile=true", "trainer.tensorboard=true",
                    "dataset.download=true", "seed=4", "trainer.lr=0.01"])
    assert list(cfg.hydra.job.config.override_dirname.exclude_keys) == list(NAME_EXCLUDED_KEYS)
    assert cfg.hydra.job.override_dirname == "trainer.lr=0.01"
    # what names leave out does not change what a run computes (the seed aside, a folder level of its own)
    assert set(NAME_EXCLUDED_KEYS) - {"seed"} <= RUNTIME_KEYS and "seed" not in RUNTIME_KEYS
