"""The lines a run prints for a reader without a progress bar (cdb/train/progress.py), by hand."""
from __future__ import annotations

from cdb.train import progress


def test_the_start_line_says_what_trains_and_where():
    assert progress.start_line("out/r", "mnist_imbalanced", 5000, 8000, "step", "cpu", 0) == \
        "out/r: training on mnist_imbalanced (5000 training images), 8000 steps on cpu"
    assert progress.start_line("out/r", "folder", 12, 30, "epoch", "cuda:0", 10).endswith(", resuming at epoch 10")


def test_a_progress_line_extrapolates_this_sessions_pace():
    # 1000 of 8000 steps, resumed at 200: 800 steps in 80 s = 10 steps/s, so 7000 steps take 700 s = 11:40
    assert progress.progress_line("r", 1000, 8000, 200, 80.0, 97.25) == \
        "r: 1000/8000 (12 %), 1:20 elapsed, about 11:40 left, validation balanced accuracy 97.25 %"
    assert progress.progress_line("r", 200, 8000, 200, 5.0) == "r: 200/8000 (2 %), 0:05 elapsed, time left unknown"
    assert "about 1:00:00 left" in progress.progress_line("r", 1, 3601, 0, 1.0)


def test_lines_come_at_most_every_so_many_seconds(monkeypatch, capsys):
    clock = iter([0.0, 30.0, 61.0, 90.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    r = progress.Reporter("r", 100, 0, quiet=False)   # t0 = 0
    r.validated(10, None)                              # 30 s: too soon
    r.validated(20, None)                              # 61 s: a line
    r.validated(30, None)                              # 90 s: 29 s after the last line
    assert capsys.readouterr().out == "r: 20/100 (20 %), 1:01 elapsed, about 4:04 left\n"
