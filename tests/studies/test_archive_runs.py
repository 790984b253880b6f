"""studies/mnist_protocol/archive_runs.py: the records of finished runs (config.yaml, metrics.json) kept under results/ with no
machine path, readable by the tables, and an unfinished run left out."""
import json
import sys

import yaml

from helpers import REPO

sys.path.insert(0, str(REPO / "studies" / "mnist_protocol"))
import archive_runs  # noqa: E402


def _run(root, rel, status="complete", error=3.5):
    d = root / rel
    d.mkdir(parents=True)
    cfg = {"seed": 0, "data_root": "/home/someone/data", "output_root": "/home/someone/outputs", "name": "calib_p3",
           "dataset": {"name": "mnist_imbalanced", "root": "/home/someone/data", "majority_ratio": 0.99},
           "loss": {"name": "ce", "label": "CE"}}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    if status:
        (d / "metrics.json").write_text(json.dumps({"status": status, "test": {"error": error}}))
    return d


def test_finished_runs_are_archived_without_machine_paths(tmp_path):
    runs, out = tmp_path / "outputs" / "calib_p3", tmp_path / "results" / "runs" / "calib_p3"
    _run(runs, "loss=ce/seed=0")
    _run(runs, "loss=ifw/seed=0", status="running")       # a run still training: no record yet
    _run(runs, "loss=cb/seed=0", status=None)              # no metrics.json at all
    assert archive_runs.archive(runs, out) == (1, 0)
    kept = out / "loss=ce" / "seed=0"
    assert sorted(p.name for p in kept.iterdir()) == ["config.yaml", "metrics.json"]
    assert not (out / "loss=ifw").exists() and not (out / "loss=cb").exists()
    text = (kept / "config.yaml").read_text()
    assert "/home/someone" not in text
    cfg = yaml.safe_load(text)
    assert (cfg["data_root"], cfg["dataset"]["root"]) == ("${oc.env:CDB_DATA_ROOT,data}", "${data_root}")
    assert json.loads((kept / "metrics.json").read_text())["test"]["error"] == 3.5
    assert archive_runs.archive(runs, out) == (0, 1)        # nothing changed: nothing rewritten


def test_an_archived_run_is_a_run_for_the_tables(tmp_path):
    from cdb.report.runs import load_runs
    runs, out = tmp_path / "outputs", tmp_path / "archive"
    _run(runs, "loss=ce/seed=0", error=4.25)
    archive_runs.archive(runs, out)
    (record,) = load_runs(out)
    assert record.metrics["test"]["error"] == 4.25 and record.cfg["loss"]["name"] == "ce"


def test_a_rewritten_run_replaces_its_record(tmp_path):
    runs, out = tmp_path / "outputs", tmp_path / "archive"
    d = _run(runs, "loss=ce/seed=0", error=4.25)
    archive_runs.archive(runs, out)
    (d / "metrics.json").write_text(json.dumps({"status": "complete", "test": {"error": 5.0}}))
    assert archive_runs.archive(runs, out) == (1, 0)
    assert json.loads((out / "loss=ce/seed=0/metrics.json").read_text())["test"]["error"] == 5.0
