"""The run directory: its file layout (named here, once), the atomic writers (io), and the claim and lock that
make one process its owner (claims). Everything that reads or writes a run directory names files through these.

    <run_dir>/config.yaml     every resolved setting          <run_dir>/log.jsonl    one row per validation
    <run_dir>/data.json       the data summary                <run_dir>/run.log      the run's log (Hydra logging)
    <run_dir>/metrics.json    the final metrics (status)      <run_dir>/checkpoints/last.pt, best.pt
"""
from pathlib import Path

CONFIG = "config.yaml"
DATA = "data.json"
LOG = "log.jsonl"
METRICS = "metrics.json"
RUN_LOG = "run.log"
CHECKPOINTS = Path("checkpoints")
LAST = CHECKPOINTS / "last.pt"
BEST = CHECKPOINTS / "best.pt"
