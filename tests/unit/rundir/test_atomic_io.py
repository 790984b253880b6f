"""Atomic writes and checkpoint reads (cdb.rundir.io), in-process: results get the umask's mode (not 0600), a full
disk is one line naming the file, and a damaged or hostile checkpoint is one line that never suggests
weights_only=False and runs no code (docs/reliability.md lists them)."""
from __future__ import annotations

import os
import stat

import pytest
import torch

from cdb.core.errors import CdbError, user_message
from helpers.faults import Hostile


# ---- item 6: file modes and full disks ----------------------------------------------------------------------
def test_results_get_the_umask_mode_not_0600(tmp_path):
    from cdb.rundir.io import atomic_torch_save, atomic_write_json

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "metrics.json", {"a": 1})
        atomic_torch_save({"w": torch.zeros(2)}, tmp_path / "last.pt")
        os.umask(0o077)
        atomic_write_json(tmp_path / "private.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "last.pt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600


def test_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch):
    import errno

    from cdb.rundir import io

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", no_space)
    with pytest.raises(OSError) as exc:
        io.atomic_write_json(tmp_path / "metrics.json", {"a": 1})
    line = user_message(exc.value)
    assert line is not None and "No space left on device" in line and "resume=true" in line
    assert not list(tmp_path.iterdir())  # no temporary left behind

    def torch_full(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(io.torch, "save", torch_full)
    with pytest.raises(OSError) as exc:
        io.atomic_torch_save({}, tmp_path / "last.pt")
    assert user_message(exc.value).startswith(f"could not write {tmp_path / 'last.pt'}: ")


# ---- item 3: damaged files --------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"garbage, not a checkpoint", "hostile", "truncated"])
def test_bad_checkpoint_is_one_line_and_never_suggests_weights_only_false(tmp_path, content):
    from cdb.rundir.io import atomic_torch_save, load_checkpoint

    path = tmp_path / "last.pt"
    if content == "hostile":
        torch.save({"model": Hostile(f"touch {tmp_path / 'pwned'}")}, path)
    elif content == "truncated":
        atomic_torch_save({"model": {"w": torch.ones(1000)}}, path)
        path.write_bytes(path.read_bytes()[:500])
    else:
        path.write_bytes(content)
    with pytest.raises(CdbError) as exc:
        load_checkpoint(path)
    msg = str(exc.value)
    assert str(path) in msg and "weights_only" not in msg and len(msg.splitlines()) == 1
    assert ("could run code" in msg) == (content == "hostile")
    assert not (tmp_path / "pwned").exists()
