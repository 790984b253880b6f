"""Sweeps (`cdb-run -m`) as a user meets them: the summary line counts ok and failed jobs, a job that fails while
training is counted too, and a table sweep without its data stops at once with the data error."""
from __future__ import annotations

import pytest

from helpers import LENET5, cdb_run
from helpers.faults import TINY


@pytest.mark.parametrize("pack", ["pack=1", "pack=2"])
def test_sweep_summary_counts_ok_and_failed(mnist_dir, tmp_path, pack):
    """pack=2: the job that fails is the last of the pack (refused while built, its directory removed); the pack's
    lines then go to the run.log of the run that trains."""
    r = cdb_run(tmp_path, "-m", "loss=cdb", "loss.tau=1,-1", *TINY, pack, data=mnist_dir)
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("cdb-run: sweep") or ln.startswith("cdb-run: job")]
    assert lines[0] == "cdb-run: sweep: 1 ok, 1 failed", r.stderr
    assert lines[1].startswith("cdb-run: job #1 (loss=cdb,loss.tau=-1") and "loss.tau=-1" in lines[1]
    (ok,) = tmp_path.rglob("metrics.json")
    assert " unit 2: loss " in (ok.parent / "run.log").read_text()  # its validation lines, in its own run.log
    assert not list(tmp_path.rglob(".cdb-jobs-*"))


def test_sweep_counts_a_job_that_fails_while_training(mnist_dir, tmp_path):
    """The pack launcher builds every job first and trains later: a failure in training is counted too."""
    r = cdb_run(tmp_path, "-m", "loss=ce", "trainer.lr=1e30,0.01", *TINY, data=mnist_dir)
    assert r.returncode == 1, r.stderr
    assert "cdb-run: sweep: 1 ok, 1 failed" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "trainer.lr=1e+30" in r.stderr and "non-finite" in r.stderr
    # it diverged in its first step, before any checkpoint: like any run that fails that early, it leaves nothing
    (finished,) = tmp_path.rglob("metrics.json")
    assert "trainer.lr=0.01" in finished.parent.parent.name


def test_multirun_without_data_fails_fast_with_the_data_error(tmp_path):
    res = cdb_run(tmp_path, "-m", "experiment=table3")
    assert res.stderr.count("cdb-run: error: CIFAR-100 file") == 5           # one line per run, no traceback
    assert "Traceback" not in res.stderr
    # the sweep fails as a whole, says so, and leaves no half-made run directory
    assert res.returncode == 1 and "cdb-run: sweep: 0 ok, 5 failed" in res.stderr
    assert res.stderr.count("failed: CIFAR-100 file") == 5
    assert not list((tmp_path / "out").rglob("seed=*"))


def test_a_resnet32_sweep_trains_as_packs(tmp_path):
    """ResNet-32 on long-tailed CIFAR-100 (a tiny one in the real file format) through the pack launcher: two seeds x
    two imbalance ratios x CE and CDB-CE with pack=4 train as 2 packs of 4, each run in its own run directory."""
    from helpers import QUICK
    from helpers.datasets import write_cifar100

    write_cifar100(tmp_path / "data", train_per_class=3, test_per_class=1)
    r = cdb_run(tmp_path, "-m", "dataset=cifar_lt", "seed=0,1", "imbalance=10,100", "loss=ce,cdb", "pack=4",
                "model.blocks=1", "dataset.val_per_class=1", "trainer.unit=step", "trainer.length=2",
                "trainer.eval_every=1", "trainer.batch_size=8", "trainer.milestones=[]", *QUICK)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert "Launching 8 jobs as 2 packs of up to 4 runs" in out and "one by one" not in out, out[-3000:]
    assert "cdb-run: sweep: 8 ok, 0 failed" in r.stderr
    assert len(list((tmp_path / "out").rglob("metrics.json"))) == 8


def test_pack_auto_trains_a_lenet5_sweep_as_the_bench_recorded(mnist_dir, tmp_path):
    """pack=auto (the default) packs a LeNet-5 sweep by the size and layout cdb/launch/pack_defaults.json records for
    this device (what `make bench` measured best per run), sets that layout on the pack's runs, and says so, with the
    bench figure, in each run's run.log."""
    import json
    import math

    from cdb.launch.defaults import RECORD

    choice = json.loads(RECORD.read_text())["cpu"]["models"]["lenet5"]
    r = cdb_run(tmp_path, "-m", "seed=0,1,2", *LENET5, *TINY, data=mnist_dir)   # the MNIST default is Ren's LeNet
    assert r.returncode == 0, r.stderr[-3000:]
    k = choice["pack"]
    assert f"Launching 3 jobs as {math.ceil(3 / k)} packs of up to {k} runs" in r.stdout + r.stderr
    runs = sorted(p.parent for p in (tmp_path / "out").rglob("metrics.json"))
    assert len(runs) == 3
    packed_last = k > 1 and choice["layout"] == "channels_last"
    for i, run in enumerate(runs):  # seed=0, 1, 2 in packs of k; a job left alone (k = 2: the third) keeps its layout
        in_pack = min(k, 3 - (i // k) * k) > 1
        assert ("channels_last: true" in (run / "config.yaml").read_text()) == (packed_last and in_pack), run
        line = next(ln for ln in (run / "run.log").read_text().splitlines() if "pack=auto: " in ln)
        assert f"pack=auto: {k} run" in line and f"make bench of {choice['bench']}" in line, line
