"""What a run checks in its directory before it goes on: that a checkpoint is its own, and that a finished run's
record can be read (cdb.train.run.RunState.begin)."""
from __future__ import annotations

from pathlib import Path

from cdb.core.errors import CdbError
from cdb.rundir import io
from cdb.rundir.names import current_settings

CHECKPOINT_KEYS = ("model", "optimizer", "weighting", "unit", "best", "torch_rng")


def own_checkpoint(path: Path, settings: dict | None, data_digest: str) -> dict:
    """The checkpoint at `path`, refused in one line when it is not a whole checkpoint of the run with these
    `settings` (cdb.build's fingerprint, or None) and data (cdb.data.base.fingerprint): keys missing, or recorded
    settings or data that differ from the run's (a file copied from another run)."""
    state = io.load_checkpoint(path)
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise CdbError(f"checkpoint {path} lacks {', '.join(repr(k) for k in missing)}: it is not a whole "
                       "checkpoint of this run; remove that file (or the run directory) to start over")
    theirs, diff = state.get("settings"), []
    if isinstance(theirs, dict):  # a record that spells a setting otherwise (cdb.rundir.names) reads under configs/ names
        theirs = current_settings(theirs)
    if theirs is not None and settings is not None and theirs != settings:
        # a longer trainer.length extends a run (resume continues it); a shorter one cannot be this run's
        diff = sorted(k for k in set(theirs) | set(settings) if theirs.get(k) != settings.get(k)
                      and not (k == "trainer.length" and (theirs.get(k) or 0) <= (settings.get(k) or 0)))
    if diff:
        k = diff[0]
        raise CdbError(f"checkpoint {path} belongs to another run: {k} is {theirs.get(k)!r} there and "
                       f"{settings.get(k)!r} here" + (f" ({len(diff) - 1} more settings differ)" if len(diff) > 1
                                                     else "")
                       + "; resume with that run's settings, or remove the checkpoint to start this run over")
    if state.get("data") not in (None, data_digest):  # absent in checkpoints written before it existed
        raise CdbError(f"checkpoint {path} was trained on other data: the splits built now differ from those the "
                       "run started with (another data_root / CDB_DATA_ROOT, or changed files); point data_root "
                       "back at the data it started with, or remove that run directory to start it over")
    return state


def check_finished(path: Path) -> None:
    """A finished run is called done only when its record (config.yaml at `path`) can be read: one that is there but
    not a YAML mapping (a hand edit, a damaged disk) would stop every report that reads it."""
    import yaml

    if not path.exists():  # a run built without Hydra's record (cdb-table leaves such a run out, saying so)
        return
    try:
        ok = isinstance(yaml.safe_load(path.read_text()), dict)
        reason = "not a mapping of settings"
    except (yaml.YAMLError, ValueError, OSError) as exc:
        ok, reason = False, str(exc).splitlines()[0]
    if not ok:
        raise CdbError(f"{path} cannot be read as the run's settings ({reason}); the run is finished but its "
                       "record is damaged: repair that file, or remove that run directory to train it again")
