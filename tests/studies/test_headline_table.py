"""The README's and docs/results.md's headline tables are the ones studies/mnist_protocol/headline.py prints from the
committed results, and those tables read the right cells (checked on hand-made CSVs)."""
from __future__ import annotations

import sys

import pandas as pd
import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "studies" / "mnist_protocol"))
import headline  # noqa: E402


@pytest.mark.parametrize("doc, tables", [("README.md", ["table1"]), ("docs/results.md", ["table1", "table2"])])
def test_docs_hold_the_tables_of_the_committed_results(doc, tables):
    for table in tables:
        assert headline.headline(REPO / "results", table) in (REPO / doc).read_text(), (doc, table)


def test_each_line_takes_its_cell_and_its_pair(tmp_path):
    rows = [("table1", m, r, 1.0 + i, 0.5, 3, 0, 0, "9.99 ± 0.11") for i, m in enumerate(headline.ROWS["table1"])
            for r in (0.9, 0.99)]
    pd.DataFrame(rows, columns="table row col mean std n collapsed diverged paper".split()).to_csv(
        tmp_path / "table1.csv", index=False)
    pairs = [("table1", 0.99, "CDB-CE", "CE", 3, -1.5, -2.25, -0.75, 2, 1, 0.0412),
             ("table1", 0.9, "CDB-CE", "CE", 3, 9.0, 8.0, 10.0, 0, 0, 0.5)]
    pd.DataFrame(pairs, columns="table ratio reference rival n mean_diff ci_low ci_high wins ties p_t".split()).to_csv(
        tmp_path / "paired_comparisons.csv", index=False)
    lines = headline.headline(tmp_path).splitlines()
    assert lines[2] == "| CE | 9.99 ± 0.11 | 1.00 ± 0.50 (3) | -1.50 (-2.25 to -0.75) | 2 of 3 seeds (1 tied) | 0.041 |"
    assert lines[-1] == "| CDB-CE | 9.99 ± 0.11 | 7.00 ± 0.50 (3) |  |  |  |"  # the reference has no pair
    assert len(lines) == 2 + len(headline.ROWS["table1"])
