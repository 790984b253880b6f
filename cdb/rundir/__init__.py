"""The run directory: its file layout (named here, once), the atomic writers (io), and the claim and lock that
make one process its owner (claims). Everything that reads or writes a run directory names files through these.

    <run_dir>/config.yaml     every resolved setting          <run_dir>/log.jsonl    one row per validation
    <run_dir>/data.json       the data summary                <run_dir>/run.log      the run's log (Hydra logging)
    <run_dir>/metrics.json    the final metrics (status)      <run_dir>/checkpoints/last.pt, best.pt
    <run_dir>/tensorboard/    TensorBoard event files         <run_dir>/eval/<name>.json   cdb-eval's metrics
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
TENSORBOARD = Path("tensorboard")   # trainer.tensorboard=true: the run's TensorBoard event files
EVAL = Path("eval")                 # cdb-eval: <name>.json, one per evaluation (never metrics.json)

# Settings left out of run-directory names (configs/config.yaml reads this tuple through `${cdb_name_excluded:}`): how
# fast a run goes, where its files are, and the seed (a folder level of its own).
NAME_EXCLUDED_KEYS = (
    "seed", "resume", "threads", "pack", "name", "experiment", "data_root", "output_root", "trainer.device",
    "trainer.progress", "trainer.num_workers", "trainer.eval_batch_size", "hydra.launcher.n_jobs", "dataset.download",
    "trainer.devices", "trainer.dist_backend", "trainer.channels_last", "trainer.compile", "trainer.cudnn_benchmark",
    "trainer.data_on_device", "trainer.tensorboard",
)
# Settings that do not change what a run computes: those names leave out (less the seed), plus where the data lives,
# how trainer=auto chose, which result is reported, the checkpoint cadence and the label.
RUNTIME_KEYS = frozenset(NAME_EXCLUDED_KEYS) - {"seed"} | {
    "dataset.root", "auto_choices", "trainer.select", "trainer.checkpoint_every", "loss.label",
    "decouple.source",   # where a decoupled run's source run lives (cdb-decouple): its seed differs per run
}


def settings_of(config: dict) -> dict:
    """{dotted key: value} of a run's resolved settings (config.yaml as a dict) without RUNTIME_KEYS: what the run
    computes. Two runs with equal settings_of differ in nothing that changes their numbers."""
    flat: dict = {}

    def walk(node: dict, prefix: str) -> None:
        for k, v in node.items():
            key = f"{prefix}{k}"
            if key in RUNTIME_KEYS:
                continue
            if isinstance(v, dict):
                walk(v, key + ".")
            else:
                flat[key] = v

    walk(config, "")
    return flat


def setting_name(run_dir: str | Path, config: dict) -> str:
    """The setting a run belongs to, as `cdb-table compare` names its row: the override folder of
    <output_root>/<name>/<overrides>/seed=<n> when the run directory is seed=<n>, else the run's loss label."""
    run_dir = Path(run_dir)
    if run_dir.name.startswith("seed="):
        return run_dir.parent.name
    loss = config.get("loss") if isinstance(config, dict) else None
    return str((loss or {}).get("label", run_dir.name) if isinstance(loss, dict) else run_dir.name)
