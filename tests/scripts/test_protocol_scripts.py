"""scripts/protocol_runs.py and scripts/protocol_calibration.py: the campaign's run list, continuing it from a
committed table, and the table's cells checked by hand against the paper's Table 1."""
import sys

import pandas as pd
import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))
import protocol_calibration  # noqa: E402
import protocol_runs  # noqa: E402


def test_run_list_size_and_keys_are_unique():
    lines = protocol_runs.lines()
    # P2-P4: 4 baselines x 3 seeds at r=0.99 (36), CDB-CE x 2 normalisations x 3 seeds (18),
    # CE/IFW x 2 other ratios x 3 seeds (36); P1: CE/IFW/CB seed 2 (3)
    assert len(lines) == 36 + 18 + 36 + 3
    keys = [protocol_runs.key(line) for line in lines]
    assert len(set(keys)) == len(lines)
    assert ("P3", "CDB-CE (normalize=none)", 0.99, 2) in keys
    assert ("P1", "CB", 0.99, 2) in keys  # P1 lines carry no ratio: the default 0.99


def test_skip_leaves_out_what_a_table_holds(tmp_path):
    csv = tmp_path / "t.csv"
    pd.DataFrame([{"protocol": "P3", "method": "CE", "ratio": 0.99, "seed": 0, "error": 9.0},
                  {"protocol": "P2", "method": "IFW (Ren et al.'s ratio)", "ratio": 0.99, "seed": 1, "error": 4.0}]
                 ).to_csv(csv, index=False)
    have = protocol_runs.done(str(csv))
    left = [line for line in protocol_runs.lines() if protocol_runs.key(line) not in have]
    assert len(left) == len(protocol_runs.lines()) - 2
    assert not any("calib_p3" in x and "loss=ce " in x and "majority_ratio=0.99 " in x and "seed=0 " in x
                   for x in left)


def _row(protocol, method, seed, error, source="x"):
    return {"protocol": protocol, "method": method, "ratio": 0.99, "seed": seed, "error": error,
            "collapsed": False, "diverged": False, "source": source}


def test_kept_rows_stay_unless_a_run_directory_replaces_them(tmp_path):
    kept = tmp_path / "kept.csv"
    pd.DataFrame([_row("P3", "CE", 0, 9.0, "old"), _row("P3", "CE", 1, 11.0, "old")]).to_csv(kept, index=False)
    runs = pd.DataFrame([_row("P3", "CE", 1, 10.0, "new"), _row("P3", "CE", 2, 8.0, "new")])
    both = protocol_calibration.with_kept(runs, kept)
    assert sorted(zip(both["seed"], both["error"], both["source"])) == [(0, 9.0, "old"), (1, 10.0, "new"),
                                                                         (2, 8.0, "new")]
    assert protocol_calibration.with_kept(runs, None).equals(runs)


def test_cells_by_hand():
    # paper CE at r=0.99: 8.59 ± 0.41 -> within when |mean - 8.59| <= 0.82
    runs = pd.DataFrame([_row("P3", "CE", 0, 8.0), _row("P3", "CE", 1, 10.0),
                         _row("P2", "CE", 0, 9.3), _row("P2", "CE", 1, 9.5)])
    c = protocol_calibration.cells(runs).set_index("protocol")
    assert c.loc["P3", "mean"] == pytest.approx(9.0) and c.loc["P3", "std"] == pytest.approx(1.0)
    assert bool(c.loc["P3", "within_2sd"]) is True  # 9.0 - 8.59 = 0.41
    assert c.loc["P2", "mean"] == pytest.approx(9.4) and bool(c.loc["P2", "within_2sd"]) is True  # 0.81
    runs.loc[3, "error"] = 9.6  # mean 9.45: 0.86 > 0.82
    assert bool(protocol_calibration.cells(runs).set_index("protocol").loc["P2", "within_2sd"]) is False
