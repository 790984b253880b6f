"""A file where cdb makes a folder (RUN/eval a file under cdb-eval, checkpoints/ a file) or a folder where it writes
a file is one line naming it, not a traceback."""
from __future__ import annotations

import pytest

from cdb.core.errors import user_message
from cdb.rundir.io import atomic_write_json


@pytest.mark.parametrize("make, target, said", [
    (lambda d: (d / "eval").write_text("x"), "eval/report.json", "a file where a folder belongs"),
    (lambda d: (d / "m.json").mkdir(), "m.json", None),
])
def test_the_wrong_kind_of_file_is_one_line(tmp_path, make, target, said):
    make(tmp_path)
    with pytest.raises(OSError) as exc:
        atomic_write_json(tmp_path / target, {"a": 1})
    line = user_message(exc.value)
    assert line is not None and str(tmp_path) in line, (type(exc.value), exc.value)
    if said:
        assert said in line
