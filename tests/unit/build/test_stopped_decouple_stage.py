"""A cdb-decouple stage stopped after it logged validations keeps its directory (as cdb-run's runs do); running the
stage again into it is refused with cdb-decouple's own advice, not cdb-run's `resume=true`, which it does not take."""
from __future__ import annotations

import pytest

from cdb.core.errors import CdbError


def test_a_stopped_stage_is_refused_with_decouples_own_advice(tmp_path, monkeypatch):
    from cdb.build import decouple as stage

    monkeypatch.setattr(stage, "read_source", lambda source: ({}, {}))
    out = tmp_path / "stage2"
    out.mkdir()
    (out / "log.jsonl").write_text('{"unit": 1}\n')
    with pytest.raises(CdbError) as exc:
        stage.decouple(tmp_path / "source", "crt", out=out)
    assert str(exc.value) == f"{out} already holds a run; remove that directory, or choose another with --out"
    assert (out / "log.jsonl").read_text() == '{"unit": 1}\n'
