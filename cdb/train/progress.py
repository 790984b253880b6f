"""What a run says on its standard output while it trains, for a reader without a progress bar (output into a file or
a pipe, CI, a sweep): one line when training starts (what trains, where it writes), then a short line at most every
CDB_PROGRESS_SECONDS (60 by default) at a validation, with how far it is, the time left and the last validation."""
from __future__ import annotations

import os
import time

PROGRESS_ENV = "CDB_PROGRESS_SECONDS"


def every_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(PROGRESS_ENV, "60")))
    except ValueError:
        return 60.0


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def start_line(where: str, dataset: str, n_train: int, length: int, unit: str, device: str, start: int) -> str:
    """`<where>: training on <dataset> (<n> training images), <length> <unit>s on <device>` (from <start> if resumed)."""
    resumed = f", resuming at {unit} {start}" if start else ""
    return f"{where}: training on {dataset} ({n_train} training images), {length} {unit}s on {device}{resumed}"


def progress_line(where: str, done: int, total: int, start: int, elapsed: float, val: float | None = None) -> str:
    """`<where>: <unit> <done>/<total> (<pct>%), <elapsed> elapsed, about <left> left[, validation balanced accuracy]`;
    the time left extrapolates this session's pace (`start`: where it began)."""
    rate = (done - start) / elapsed if elapsed > 0 and done > start else 0.0
    left = f"about {_clock((total - done) / rate)} left" if rate else "time left unknown"
    last = f", validation balanced accuracy {val:.2f} %" if val is not None else ""
    return f"{where}: {done}/{total} ({100 * done / total:.0f} %), {_clock(elapsed)} elapsed, {left}{last}"


class Reporter:
    """Prints the start line at once and a progress line at a validation once every_seconds() have passed."""

    def __init__(self, where: str, total: int, start: int, quiet: bool) -> None:
        self.where, self.total, self.start, self.quiet = where, total, start, quiet
        self.t0 = self.said = time.monotonic()

    def say(self, line: str) -> None:
        if not self.quiet:
            print(line, flush=True)

    def validated(self, done: int, val: float | None) -> None:
        now = time.monotonic()
        if now - self.said >= every_seconds() and done < self.total:
            self.said = now
            self.say(progress_line(self.where, done, self.total, self.start, now - self.t0, val))
