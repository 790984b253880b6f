"""A run says what happened: its final line names the classes, and a collapsed run ends with a line that
says so, names the class and points to docs/own-data.md; metrics.json and run.log say the same."""
from __future__ import annotations

import json

from helpers import LENET5, REPO, cdb_run, confusion_error, run_dirs

# CE on MNIST 4/9 at 99:1 for 20 steps: the network predicts the majority digit 9 for every image (test error
# 50.00 %, 800 test images per digit), so digit 4 is at 0 % on validation and test
LOST = ["loss=ce", "trainer.unit=step", "trainer.length=20", "trainer.eval_every=10", "trainer.milestones=[]",
        "trainer.progress=false", "threads=1"]
# LeNet-5 at 50:50 and lr 0.05 for 60 steps: both digits learned (Ren et al.'s network, slower to start at
# this lr, has not yet)
LEARNED = [*LENET5, "loss=ce", "dataset.majority_ratio=0.5", "trainer.unit=step", "trainer.length=60", "trainer.eval_every=30",
           "trainer.lr=0.05", "trainer.milestones=[]", "trainer.progress=false", "threads=1"]


def test_a_collapsed_run_ends_saying_so(mnist_dir, tmp_path):
    r = cdb_run(tmp_path, *LOST, data=mnist_dir)
    assert r.returncode == 0, r.stderr[-2000:]
    (run,) = run_dirs(tmp_path / "out")
    m = json.loads((run / "metrics.json").read_text())
    _, error, per_class = confusion_error(m["checkpoints"]["last"]["test_confusion"])
    assert error == 50.0 and per_class == [0.0, 100.0]          # the counts: every test image called 9
    lines = r.stdout.strip().splitlines()
    assert lines[-2] == (f"{run}: test error 50.00% (accuracy 50.00%, per class 4: 0.0, 9: 100.0) "
                         "[last checkpoint]")
    assert lines[-1].startswith(f"{run}: collapsed: class 4 below 1 % accuracy (validation and test) "
                                f"[last checkpoint]; what to try: {REPO / 'docs' / 'own-data.md'}, \"When a run collapses\"")
    assert m["collapsed"] == {"4": ["validation", "test"]}
    assert m["test"]["collapsed"] == ["4"] and m["checkpoints"]["last"]["val"]["collapsed"] == ["4"]
    assert lines[-1].split(": ", 1)[1] in (run / "run.log").read_text()    # the same line in run.log
    docs = (REPO / "docs" / "own-data.md").read_text()
    assert "\n## When a run collapses\n" in docs                             # the section the line points to


def test_a_run_that_learned_both_classes_ends_with_its_result_only(mnist_dir, tmp_path):
    r = cdb_run(tmp_path, *LEARNED, data=mnist_dir)
    assert r.returncode == 0, r.stderr[-2000:]
    (run,) = run_dirs(tmp_path / "out")
    m = json.loads((run / "metrics.json").read_text())
    _, _, per_class = confusion_error(m["checkpoints"]["last"]["test_confusion"])
    assert min(per_class) > 50                                               # both digits learned
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith(f"{run}: test error ") and "per class 4: " in last and ", 9: " in last
    assert "collapsed" not in r.stdout and "collapsed" not in (run / "run.log").read_text()
    assert m["collapsed"] == {} and m["test"]["collapsed"] == []
