"""log.jsonl with damaged bytes (a bad sector, a hand edit in the wrong encoding) is read up to the damage, as a
torn last line is: resume says the log has a gap instead of stopping with a UnicodeDecodeError traceback."""
from __future__ import annotations

from cdb.rundir.io import read_jsonl


def test_rows_before_damaged_bytes_are_read_and_the_rest_is_dropped(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"unit": 1}\n{"unit": 2}\n\xbf\xff garbage\n{"unit": 4}\n')
    assert read_jsonl(path) == [{"unit": 1}, {"unit": 2}]
    path.write_bytes(b"\xbf\x00\x13" * 100)
    assert read_jsonl(path) == []
