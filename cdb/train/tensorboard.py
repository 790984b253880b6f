"""TensorBoard logs of one run (`trainer.tensorboard=true`, off by default; pip install 'cdb-loss[tensorboard]').

Each run writes its own log into RUN_DIR/tensorboard/ through torch.utils.tensorboard, whether it trains alone, in a
pack (one fused model, one log per run) or data-parallel (rank 0 only). The global step is the unit count (the
`unit` of log.jsonl: epochs or steps, see trainer.unit). After every validation:

    train/loss, train/lr                     the logged training loss of the units before it, the lr of the last one
    val/balanced_accuracy                    mean class-wise validation accuracy (%)
    val/class_accuracy/<class>               each class's validation accuracy (%), the paper's A_c
    weights/<class>, tau                     the class weights for the next units and tau (as log.jsonl records them)

At the end: the selected checkpoint's test metrics (test/error, test/accuracy, test/macro_recall, test/top1, ...)
with the run's settings as hyper-parameters (what SummaryWriter.add_hparams writes, TensorBoard's HPARAMS tab),
in the same event file as the curves. A resumed run
appends to the same folder and drops what an earlier session logged after the checkpoint it resumed from
(purge_step), so the curves have one point per validation.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

MISSING = ("trainer.tensorboard=true needs the tensorboard package, which is not installed: "
           "pip install 'cdb-loss[tensorboard]' (or pip install tensorboard)")


def available() -> bool:
    """Whether the tensorboard package is installed (checked without importing it)."""
    return importlib.util.find_spec("tensorboard") is not None


def hparam_value(v):
    """A setting as add_hparams takes it: numbers, booleans and strings as they are, anything else as JSON text."""
    return v if isinstance(v, (bool, int, float, str)) else json.dumps(v)


class Board:
    """The TensorBoard log of one run: `validation(row)` after each validation, `final(...)` once, `close()`."""

    def __init__(self, log_dir: str | Path, class_names: list[str], purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter  # optional dependency (cdb-loss[tensorboard])

        self.log_dir = Path(log_dir)
        self.class_names = [str(n) for n in class_names]
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    def validation(self, row: dict) -> None:
        """One log.jsonl row (cdb.train.run.RunState.after_units) as scalars at step row["unit"]."""
        w, unit = self.writer, int(row["unit"])
        w.add_scalar("train/loss", row["train_loss"], unit)
        w.add_scalar("train/lr", row["lr"], unit)
        w.add_scalar("val/balanced_accuracy", row["val_balanced_accuracy"], unit)
        for name, acc in zip(self.class_names, row["val_class_accuracy"]):
            w.add_scalar(f"val/class_accuracy/{name}", acc, unit)
        for name, weight in zip(self.class_names, row.get("weights", [])):
            w.add_scalar(f"weights/{name}", weight, unit)
        if row.get("tau") is not None:
            w.add_scalar("tau", row["tau"], unit)
        w.flush()  # a killed run keeps every validation it logged

    def final(self, settings: dict, test: dict, unit: int) -> None:
        """The test metrics (every number of metrics.json's `test`) with the run's settings as hyper-parameters."""
        from torch.utils.tensorboard.summary import hparams  # optional dependency (cdb-loss[tensorboard])

        metrics = {f"test/{k}": float(v) for k, v in test.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        # what SummaryWriter.add_hparams writes, written by this run's own writer: add_hparams opens a second writer
        # (a timestamped sub-run, or with run_name="." a second event file whose name may sort before this one's
        # and so read first, which makes TensorBoard purge the curves as "out of order")
        for summary in hparams({k: hparam_value(v) for k, v in settings.items()}, metrics):
            self.writer.file_writer.add_summary(summary, int(unit))
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, int(unit))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
