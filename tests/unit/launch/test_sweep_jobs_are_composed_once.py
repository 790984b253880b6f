"""A sweep through the pack launcher composes each job's config once: Hydra's sweeper composes it to check the
batch, and the launcher takes that config instead of composing it again (counted at Hydra's own compose)."""
import sys

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.utils import JobReturn, JobStatus

import cdb.launch.pack as pack
from cdb.cli import run as cli_run


def test_each_job_is_composed_once_and_the_launcher_gets_each_jobs_own_config(tmp_path, monkeypatch):
    composed, got = [], []
    orig = ConfigLoaderImpl.load_configuration

    def counting(self, config_name, overrides, run_mode, *a, **k):
        composed.append(sorted(o for o in overrides if o.startswith("seed=")))
        return orig(self, config_name, overrides, run_mode, *a, **k)

    def fake_train_pack(hydra_context, jobs, note=""):  # what each pack would train: no training here
        got.extend((int(j.seed), int(j.hydra.job.num)) for j in jobs)
        return [JobReturn(status=JobStatus.COMPLETED, _return_value=None) for _ in jobs]

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counting)
    monkeypatch.setattr(pack, "train_pack", fake_train_pack)
    monkeypatch.setattr(sys, "argv", ["cdb-run"])
    cli_run.main(["-m", "seed=0,1,2,3", "pack=2", f"hydra.sweep.dir={tmp_path}/sweep", "trainer.length=1"])
    per_job = [c for c in composed if c and "," not in c[0]]  # the master config holds the sweep (seed=0,1,2,3)
    assert sorted(map(tuple, per_job)) == [("seed=0",), ("seed=1",), ("seed=2",), ("seed=3",)]
    assert sorted(got) == [(0, 0), (1, 1), (2, 2), (3, 3)]
