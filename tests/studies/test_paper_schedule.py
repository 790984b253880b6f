"""studies/mnist_protocol/paper_schedule.py: per-run figures from run directories, weight flips counted by hand."""
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import yaml

from helpers import REPO

sys.path.insert(0, str(REPO / "studies" / "mnist_protocol"))
import paper_schedule  # noqa: E402


def _run(root: Path, name: str, loss: dict, seed: int, weights: list, metrics: dict | None):
    d = root / name / f"seed={seed}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "loss": loss, "trainer": {"length": 4}}))
    rows = [{"unit": i + 1, "val_balanced_accuracy": 50 + 10 * i, "weights": w} for i, w in enumerate(weights)]
    (d / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if metrics:
        (d / "metrics.json").write_text(json.dumps(metrics))


def _metrics(last_err, last_min, best_err, best_min, best_unit):
    ck = lambda err, mino, unit: {"unit": unit, "test": {"error": err, "per_class_accuracy": [mino, 99.0]}}
    return {"status": "complete", "train_class_counts": [50, 4950], "train_wall_time_s": 120.0,
            "checkpoints": {"last": ck(last_err, last_min, 4), "best": ck(best_err, best_min, best_unit)}}


def test_flips_count_order_swaps_and_skip_ties():
    rows = lambda ws: [{"weights": w} for w in ws]
    assert paper_schedule.weight_flips(rows([[1, 0], [1, 0], [0.4, 0.6], [1, 1], [0.3, 0.7], [0.9, 0.1]])) == 2
    assert paper_schedule.weight_flips(rows([[1, 1], [1, 1]])) == 0


def test_tables_and_figure_from_run_directories(tmp_path):
    root = tmp_path / "paper_schedule"
    cdb = {"name": "cdb", "label": "CDB-CE", "normalize": "mean"}
    _run(root, "loss.normalize=mean,loss=cdb", cdb, 0, [[1, 0], [0.2, 1.8], [1.5, 0.5], [1.6, 0.4]],
         _metrics(4.0, 92.0, 3.5, 93.0, 2))
    _run(root, "loss.normalize=mean,loss=cdb", cdb, 1, [[1, 0], [1.2, 0.8], [1.5, 0.5], [1.6, 0.4]],
         _metrics(5.0, 90.0, 4.5, 91.0, 3))
    _run(root, "loss=ce", {"name": "ce", "label": "CE"}, 0, [[1, 1], [1, 1]], None)  # unfinished: epoch 2 of 4
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(REPO / "studies" / "mnist_protocol" / "paper_schedule.py"), "--runs", str(root),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    md = (out / "paper_schedule.md").read_text()
    # mean ± population std of (4.0, 5.0) = 4.50 ± 0.50; of (3.5, 4.5) = 4.00 ± 0.50; minority (92, 90) = 91 ± 1
    assert "| CDB-CE (normalize=mean) | 4.50 ± 0.50 (2)" in md.replace("  ", " ").replace("  ", " ")
    assert "4.00 ± 0.50 (2)" in md and "91.00 ± 1.00 (2)" in md and "2.39 ± 0.41" in md
    assert "no finished run" in md                          # CE has not finished
    text = (out / "paper_schedule.csv").read_text()
    rows = {(r["setting"], r["seed"]): r for r in csv.DictReader(io.StringIO(text))}
    ce = rows[("CE", "0")]
    assert (ce["epochs"], ce["of"], ce["last_error"]) == ("2", "4", "")
    seed0 = rows[("CDB-CE (normalize=mean)", "0")]
    assert (seed0["flips"], float(seed0["best_epoch"]), seed0["run"]) == ("2", 2.0, "loss.normalize=mean,loss=cdb/seed=0")
    assert rows[("CDB-CE (normalize=mean)", "1")]["flips"] == "0"
    assert str(tmp_path) not in md and str(tmp_path) not in text  # no machine paths
    assert (out / "paper_schedule.png").stat().st_size > 10_000
