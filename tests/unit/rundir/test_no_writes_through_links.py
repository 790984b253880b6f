"""A run directory cdb claims is written only through real folders and files cdb made: a planted link (the lock, a
folder of the output tree) is refused in one line and its target never read nor changed; a file where cdb keeps a
folder (or the reverse) is one line too; the clean-up of interrupted writes touches only cdb's own temporaries."""
from __future__ import annotations

import errno
import logging

import pytest

from cdb.core.errors import CdbError, user_message
from cdb.rundir.claims import claim, lock, remove_orphans


def test_a_symlinked_lock_is_refused_and_its_target_neither_read_nor_written(tmp_path, caplog):
    victim = tmp_path / "victim.txt"
    victim.write_text("secret\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(victim)
    with caplog.at_level(logging.DEBUG), pytest.raises(CdbError, match=r"\.lock is a symbolic link"):
        with claim(run, resume=True):
            pass
    with pytest.raises(CdbError, match=r"\.lock is a symbolic link"):  # the lock itself opens with O_NOFOLLOW
        with lock(run):
            pass
    assert victim.read_text() == "secret\n" and "secret" not in caplog.text


@pytest.mark.parametrize("link", ["default", "default/loss=ce", "default/loss=ce/seed=0"])
def test_a_linked_folder_below_the_output_root_is_refused(tmp_path, link):
    root, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    (root / link).symlink_to(elsewhere)
    with pytest.raises(CdbError, match=f"{root / link} is a symbolic link"):
        with claim(root / "default" / "loss=ce" / "seed=0", resume=False, root=root):
            pass
    assert list(elsewhere.rglob("*")) == []


def test_a_linked_output_root_itself_is_the_users_choice(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "root").symlink_to(real)
    with claim(tmp_path / "root" / "default" / "seed=0", resume=False, root=tmp_path / "root") as c:
        assert c.fresh
    assert (real / "default" / "seed=0").is_dir()  # made inside the folder the root points to


@pytest.mark.parametrize("name, folder, said", [
    ("log.jsonl", True, "is a folder, where cdb keeps a file"),
    ("checkpoints", False, "is a file, where cdb keeps a folder"),
    ("run.log", None, "run.log is a symbolic link"),
])
def test_a_run_file_of_the_wrong_kind_or_a_link_is_one_line(tmp_path, name, folder, said):
    run = tmp_path / "run"
    run.mkdir()
    if folder is None:
        (tmp_path / "target").write_text("theirs\n")
        (run / name).symlink_to(tmp_path / "target")
    elif folder:
        (run / name).mkdir()
    else:
        (run / name).write_text("x")
    with pytest.raises(CdbError, match=said):
        with claim(run, resume=True):
            pass
    assert folder is not None or (tmp_path / "target").read_text() == "theirs\n"


def test_only_cdbs_own_temporaries_are_removed(tmp_path):
    from cdb.rundir.io import atomic_write_text

    ours = tmp_path / ".cdb-partial.log.jsonl.k2j3.tmp"
    ours.write_text("half")
    notes = tmp_path / ".mynotes.tmp"
    notes.write_text("notes")
    shaped = tmp_path / ".cdb-partial.folder.tmp"  # a folder of that shape is not a temporary file
    shaped.mkdir()
    assert remove_orphans(tmp_path) == [ours]
    assert notes.read_text() == "notes" and shaped.is_dir()
    atomic_write_text(tmp_path / "a.txt", "x")  # and what cdb writes goes through that prefix
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cdb-partial.folder.tmp", ".mynotes.tmp", "a.txt"]


def test_run_log_is_never_opened_through_a_link(tmp_path):
    from cdb.core.logs import RunLogHandler

    (tmp_path / "target").write_text("theirs\n")
    (tmp_path / "run.log").symlink_to(tmp_path / "target")
    handler = RunLogHandler(tmp_path / "run.log", delay=True)
    with pytest.raises(OSError) as exc:
        handler.emit(logging.makeLogRecord({"msg": "hello"}))
    assert (tmp_path / "target").read_text() == "theirs\n"
    assert user_message(exc.value) == f"{tmp_path / 'run.log'} is a symbolic link; cdb never writes through a link " \
                                      "it did not make: remove it"


def test_a_full_disk_under_run_log_is_one_error_naming_it(tmp_path, monkeypatch):
    """Logging's default prints a page of '--- Logging error ---' per record and goes on; run.log's handler stops
    once, naming the file (the one line cdb-run prints)."""
    from cdb.core.logs import RunLogHandler

    handler = RunLogHandler(tmp_path / "run.log", delay=True)
    handler.setFormatter(logging.Formatter("%(message)s"))

    def no_space():
        raise OSError(errno.ENOSPC, "No space left on device")

    handler.emit(logging.makeLogRecord({"msg": "first"}))
    monkeypatch.setattr(handler.stream, "flush", no_space)
    with pytest.raises(OSError) as exc:
        handler.emit(logging.makeLogRecord({"msg": "second"}))
    assert user_message(exc.value).startswith(f"could not write {tmp_path / 'run.log'}: No space left on device")
    handler.emit(logging.makeLogRecord({"msg": "third"}))  # afterwards: quiet, the error above says it all
    handler.close()
