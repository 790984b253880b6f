"""studies/mnist_protocol/trained_twice.py: a run trained again is set beside its first training's test error; a record that was
already archived when the first table was made is that table's own run and is left out."""
import json
import sys

import pandas as pd
import yaml

from helpers import REPO

sys.path.insert(0, str(REPO / "studies" / "mnist_protocol"))
import trained_twice  # noqa: E402


def _record(root, overrides, seed, error, loss="ce"):
    d = root / "calib_p3" / overrides / f"seed={seed}"
    d.mkdir(parents=True)
    cfg = {"name": "calib_p3", "seed": seed, "dataset": {"majority_ratio": 0.99},
           "loss": {"name": loss, "label": loss.upper()}}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    (d / "metrics.json").write_text(json.dumps({"status": "complete", "test": {"error": error},
                                                "checkpoints": {"last": {"test": {"error": error}}}}))
    return f"calib_p3/{overrides}/seed={seed}"


def test_each_run_trained_again_beside_its_first_error(tmp_path):
    runs = tmp_path / "runs"
    same = _record(runs, "loss=ce", 0, 9.75)
    moved = _record(runs, "loss=ce", 1, 4.0)           # one image of 1600 is 0.0625 points: 8 images here
    before = _record(runs, "loss=ifw", 0, 3.5, "ifw")   # archived before the first table: its own run
    _record(runs, "loss=cb", 0, 4.8, "cb")              # not in the first table: nothing to compare
    first = pd.DataFrame({"source": [same, moved, before], "error": [9.75, 3.5, 3.5]})
    t = trained_twice.compare(first, runs, archived_before={before})
    assert list(zip(t["seed"], t["first"], t["again"], t["difference"], t["identical"])) == [
        (0, 9.75, 9.75, 0.0, True), (1, 3.5, 4.0, 0.5, False)]
    assert set(t["method"]) == {"CE"}
    md = trained_twice.markdown(t, "cmd", "abc1234")
    assert "**1 of 2 runs repeated their test error exactly**; the largest difference is 0.50 points." in md
    assert "-0.0000" not in md and "abc1234" in md
