"""The MNIST default is protocol P3 (docs/protocol.md): `cdb-run` with no model or trainer trains Ren et al.'s
network on inputs in [0, 1] with their schedule, validating every 50 steps and halving the lr after half the run;
L2RW trains half the steps of the baselines. Checked on a real run's own files (config.yaml, log.jsonl)."""
from __future__ import annotations

import yaml

from helpers import cdb_run, read_log, run_dirs


def test_a_default_run_trains_p3(mnist_dir, tmp_path):
    r = cdb_run(tmp_path, "trainer.length=100", "trainer.progress=false", "threads=1", data=mnist_dir)
    assert r.returncode == 0, r.stderr[-2000:]
    (run,) = run_dirs(tmp_path / "out")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert (cfg["model"]["name"], cfg["dataset"]["normalize"], cfg["loss"]["name"]) == ("lenet_ren", "unit", "cdb")
    t = cfg["trainer"]
    assert (t["unit"], t["length"], t["milestones"], t["gamma"], t["weight_decay"], t["lr"], t["batch_size"]) == \
        ("step", 100, [51], 0.5, 0.0, 0.001, 100)
    rows = read_log(run)
    # a validation (the CDB update) every 50 steps; lr 1e-3 for 0-based steps 0..50, halved from step 51 on
    assert [row["step"] for row in rows] == [50, 100]
    assert [row["lr"] for row in rows] == [0.001, 0.0005]
    assert all(len(row["weights"]) == 2 for row in rows)


def test_l2rw_takes_ren_et_al_s_own_length():
    from helpers import compose
    t = compose(["loss=l2rw"]).trainer
    assert (t.length, list(t.milestones)) == (4000, [2001])
