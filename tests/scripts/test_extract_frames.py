"""scripts/extract_frames.py: backend choice, the ffmpeg call, and the folder-per-clip output (with a stand-in
ffmpeg, since no video decoder is installed here)."""
from __future__ import annotations

import importlib.util
import stat
import sys
from pathlib import Path

import pytest

from helpers import REPO

spec = importlib.util.spec_from_file_location("extract_frames", REPO / "scripts" / "extract_frames.py")
ef = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ef)


def test_no_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(ef.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "av", None)                  # PyAV not installed
    with pytest.raises(SystemExit, match="neither the ffmpeg program nor PyAV"):
        ef.find_backend()


def test_ffmpeg_command():
    cmd = ef.ffmpeg_command(Path("in/clip.mp4"), Path("out/clip"), 256)
    assert cmd[:2] == ["ffmpeg", "-nostdin"] and cmd[cmd.index("-i") + 1] == "in/clip.mp4"
    assert cmd[-1] == "out/clip/img_%05d.jpg" and cmd[cmd.index("-start_number") + 1] == "1"
    assert "256" in cmd[cmd.index("-vf") + 1]
    assert "-vf" not in ef.ffmpeg_command(Path("a.mp4"), Path("o"), 0)


def test_extraction_with_stand_in_ffmpeg(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ffmpeg"
    # writes 3 "frames" where the last argument (the output pattern) points; fails for clips named bad*
    fake.write_text('#!/bin/sh\nfor a; do out="$a"; case "$a" in *bad*) echo "corrupt" >&2; exit 1;; esac; done\n'
                    'd=$(dirname "$out"); for i in 1 2 3; do echo x > "$d/img_0000$i.jpg"; done\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    clips = tmp_path / "clips" / "P01-R01-PastaSalad"
    clips.mkdir(parents=True)
    for name in ("P01-R01-PastaSalad-1-2-F1-F2.mp4", "P01-R01-PastaSalad-3-4-F3-F4.mp4", "bad.mp4", "notes.txt"):
        (clips / name).write_text("")
    out = tmp_path / "frames"
    assert ef.main([str(tmp_path / "clips"), str(out), "--jobs", "2"]) == 1           # one clip failed
    assert sorted(p.name for p in (out / "P01-R01-PastaSalad-1-2-F1-F2").iterdir()) == [
        "img_00001.jpg", "img_00002.jpg", "img_00003.jpg"]
    assert not (out / "bad").exists() and not list(out.glob(".*partial"))
    text = capsys.readouterr()
    assert "2 extracted, 0 already there, 1 failed" in text.out and "corrupt" in text.err
    (clips / "bad.mp4").unlink()
    assert ef.main([str(tmp_path / "clips"), str(out)]) == 0                          # re-run skips done clips
    assert "0 extracted, 2 already there" in capsys.readouterr().out


def test_no_videos(tmp_path):
    with pytest.raises(SystemExit, match="no video files"):
        ef.main([str(tmp_path), str(tmp_path / "out")])
