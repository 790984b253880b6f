"""docs/reliability.md is one table whose test column names tests that exist: every `tests/...py` file it cites
is in the repository, and every `::name` is a test defined in that file."""
from __future__ import annotations

import re

from helpers import REPO

DOC = REPO / "docs" / "reliability.md"
AREAS = ["inputs", "paths and permissions", "processes and signals", "data", "reports", "resources", "security"]


def _rows() -> list[list[str]]:
    lines = [ln for ln in DOC.read_text().splitlines() if ln.startswith("| ") and not ln.startswith("| area")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]


def test_the_doc_is_one_table_ordered_by_area():
    rows = _rows()
    assert rows and all(len(r) == 4 for r in rows)
    areas = [r[0] for r in rows]
    assert set(areas) <= set(AREAS)
    assert areas == sorted(areas, key=AREAS.index)
    assert DOC.read_text().count("| area | fault | what you see | test |") == 1


def test_every_cited_test_exists():
    per_row = [re.findall(r"`(tests/[^`:]+\.py)(?:::(\w+))?`", r[3]) for r in _rows()]
    assert all(per_row), [r[1] for r, c in zip(_rows(), per_row) if not c]  # every row cites a test
    for path, name in (c for cs in per_row for c in cs):
        file = REPO / path
        assert file.is_file(), path
        if name:
            assert re.search(rf"^def {name}\(", file.read_text(), re.M), f"{path}::{name}"
