"""cdb-table paired: CDB-CE against each rival seed by seed. The statistics (mean difference, 95 % CI, wins, paired t
and Wilcoxon p) are checked against numbers worked out by hand here, the t distribution through its closed-form CDF
at 2 and 3 degrees of freedom, the Wilcoxon p by counting sign patterns; then the pairing of run records by seed."""
from __future__ import annotations

import csv
import json
import math

import pytest

from cdb.cli.table import main as table
from cdb.report.paired import WILCOXON_MIN_N, build_paired, paired_stats
from helpers.report import fake_mnist_run


def t_cdf_df2(t: float) -> float:
    """Student's t CDF, 2 degrees of freedom: 1/2 + t / (2 sqrt(2 + t^2))."""
    return 0.5 + t / (2 * math.sqrt(2 + t * t))


def t_cdf_df3(t: float) -> float:
    """Student's t CDF, 3 degrees of freedom: 1/2 + (x / (1 + x^2) + atan x) / pi, x = t / sqrt(3)."""
    x = t / math.sqrt(3)
    return 0.5 + (x / (1 + x * x) + math.atan(x)) / math.pi


def quantile(cdf, q: float) -> float:
    lo, hi = 0.0, 100.0   # bisection: the CDF rises monotonically
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return lo


def test_three_pairs_by_hand():
    # CDB-CE 2, 3, 4 against 3, 5, 7: d = -1, -2, -3. mean -2; sd (ddof 1) = sqrt((1 + 0 + 1) / 2) = 1;
    # se = 1 / sqrt(3); t = -2 sqrt(3) = -3.4641 with 2 df.
    # Two-sided p = 2 (1 - F(|t|)) = 1 - |t| / sqrt(2 + t^2) = 1 - sqrt(12 / 14) = 0.074180.
    # t(0.975, 2): |t| / sqrt(2 + t^2) = 0.95 -> t^2 = 2 * 0.9025 / 0.0975 = 18.5128, t = 4.302653;
    # half width 4.302653 / sqrt(3) = 2.484138: CI [-4.484138, 0.484138]. CDB-CE lower at all 3 seeds.
    st = paired_stats([2.0, 3.0, 4.0], [3.0, 5.0, 7.0])
    assert st.n == 3 and st.mean == pytest.approx(-2.0)
    assert st.t == pytest.approx(-2 * math.sqrt(3))
    assert st.p_t == pytest.approx(1 - math.sqrt(12 / 14)) and st.p_t == pytest.approx(0.074180, abs=1e-6)
    assert math.sqrt(2 * 0.9025 / 0.0975) == pytest.approx(4.302653, abs=1e-6)
    assert (st.ci_low, st.ci_high) == (pytest.approx(-4.484138, abs=1e-6), pytest.approx(0.484138, abs=1e-6))
    assert (st.wins, st.ties, st.losses) == (3, 0, 0)
    assert math.isnan(st.p_w)                                  # 3 pairs: Wilcoxon's p could not go below 0.25


def test_four_pairs_by_hand():
    # d = 1-2, 2-4, 4-3, 3-5 = -1, -2, +1, -2. mean -1; deviations 0, -1, 2, -1: sd = sqrt(6 / 3) = sqrt(2);
    # se = sqrt(2) / 2; t = -sqrt(2) with 3 df. x = t / sqrt(3) = sqrt(2/3) = 0.816497;
    # p = 1 - (2 / pi) (x / (1 + x^2) + atan x) = 1 - 0.63662 (0.489898 + 0.684719) = 0.252215.
    # t(0.975, 3) = 3.182446 (the closed-form CDF inverted by bisection, and the printed tables' value);
    # half width 3.182446 * 0.707107 = 2.250330: CI [-3.250330, 1.250330]. Wins 3, losses 1.
    st = paired_stats([1.0, 2.0, 4.0, 3.0], [2.0, 4.0, 3.0, 5.0])
    assert st.mean == pytest.approx(-1.0) and st.t == pytest.approx(-math.sqrt(2))
    assert st.p_t == pytest.approx(2 * (1 - t_cdf_df3(math.sqrt(2)))) and st.p_t == pytest.approx(0.252215, abs=1e-6)
    t975 = quantile(t_cdf_df3, 0.975)
    assert t975 == pytest.approx(3.182446, abs=1e-6)
    assert st.ci_high - st.mean == pytest.approx(t975 * math.sqrt(2) / 2)
    assert (st.ci_low, st.ci_high) == (pytest.approx(-3.250330, abs=1e-6), pytest.approx(1.250330, abs=1e-6))
    assert (st.wins, st.ties, st.losses) == (3, 0, 1)
    assert quantile(t_cdf_df2, 0.975) == pytest.approx(4.302653, abs=1e-6)   # the same check at 2 df


def test_wilcoxon_exact_p_by_counting_sign_patterns():
    # 6 pairs, |d| = 1..6 (distinct ranks 1..6): 2^6 = 64 equally likely sign patterns under the null.
    # All 6 negative: W+ = 0; only the all-negative pattern has W+ <= 0, so p = 2 * 1/64 = 0.03125.
    assert WILCOXON_MIN_N == 6
    ref = [10.0] * 6
    st = paired_stats(ref, [11.0, 12.0, 13.0, 14.0, 15.0, 16.0])
    assert st.w == 0 and st.p_w == pytest.approx(2 / 64)
    # rank 1 positive: W+ = 1; W+ <= 1 for {no positive, only rank 1}: p = 2 * 2/64 = 0.0625.
    st = paired_stats(ref, [9.0, 12.0, 13.0, 14.0, 15.0, 16.0])
    assert st.w == 1 and st.p_w == pytest.approx(4 / 64)
    assert (st.wins, st.losses) == (5, 1)
    # 5 pairs: not shown (its smallest two-sided p is 2/32 = 0.0625)
    assert math.isnan(paired_stats(ref[:5], [11.0, 12.0, 13.0, 14.0, 15.0]).p_w)


def test_one_pair_or_no_spread():
    st = paired_stats([2.0], [3.5])
    assert st.n == 1 and st.mean == -1.5 and st.wins == 1
    assert math.isnan(st.ci_low) and math.isnan(st.p_t)
    st = paired_stats([1.0, 2.0], [2.0, 3.0])                   # d = -1, -1: no spread, no t
    assert st.mean == -1 and st.ci_low == st.ci_high == -1 and math.isnan(st.p_t)


def _diverge(runs, name, seed):
    path = runs / name / f"seed={seed}" / "metrics.json"
    path.write_text(json.dumps({"status": "diverged"}))


def test_runs_pair_by_seed_and_ratio(tmp_path):
    runs = tmp_path / "runs"
    for seed, err in enumerate([2.0, 3.0, 4.0]):
        fake_mnist_run(runs, "cdb", "dynamic", 0.99, seed, err)
    for seed, err in enumerate([3.0, 5.0, 7.0, 9.0]):                # seed 3: CDB-CE has none, so not paired
        fake_mnist_run(runs, "ce", 0, 0.99, seed, err, label="CE", weighting="none")
    for seed, err in enumerate([1.0, 4.0, 4.0]):
        fake_mnist_run(runs, "cb", 0, 0.99, seed, err, label="CB", weighting="cb")
    _diverge(runs, "cb", 2)                                          # no value: seed 2 left out of that pair
    fake_mnist_run(runs, "ifw", 0, 0.9, 0, 1.0, label="IFW", weighting="ifw")   # no CDB-CE at 0.9: no line
    for seed, err in enumerate([1.0, 2.0, 4.0]):
        fake_mnist_run(runs, "tau2", 2.0, 0.99, seed, err)               # Table 2: tau 2 against dynamic
    md, csv_path = build_paired(runs, tmp_path / "out", command="make campaign-tables")
    lines = list(csv.DictReader(csv_path.open()))
    assert [(r["table"], r["ratio"], r["rival"]) for r in lines] == [
        ("table1", "0.99", "CE"), ("table1", "0.99", "CB"), ("table2", "0.99", "2")]
    ce, cb, tau2 = lines
    assert ce["n"] == "3" and ce["seeds"] == "0 1 2" and float(ce["mean_diff"]) == -2
    assert float(ce["p_t"]) == pytest.approx(0.074180, abs=1e-5) and ce["wins"] == "3"
    assert float(ce["rival_mean"]) == 5.0                           # the shared seeds' mean, not seed 3's too
    # CB: seeds 0, 1; d = 2 - 1, 3 - 4 = 1, -1: mean 0, one win, one loss; seed 2 diverged
    assert cb["n"] == "2" and cb["left_out"] == "1" and float(cb["mean_diff"]) == 0
    assert (cb["wins"], cb["losses"]) == ("1", "1")
    # dynamic 2, 3, 4 against tau 2's 1, 2, 4: d = 1, 1, 0 -> one tie, no win
    assert (tau2["wins"], tau2["ties"], tau2["losses"]) == ("0", "1", "2")
    text = md.read_text()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| 0.99")]
    assert rows[0] == ["0.99", "CE", "3", "3.00", "5.00", "-2.00", "[-4.48, 0.48]", "3/3", "0.074", "—"]
    assert rows[1][:3] == ["0.99", "CB", "2 (+1 diverged)"] and rows[1][7] == "1/2"
    assert rows[2][:3] == ["0.99", "2", "3"] and rows[2][7] == "0/3 (1 tied)"
    assert "make campaign-tables" in text and "No shared seed (not compared) at r = 0.9, 0.95, 0.98, 0.995" in text


def test_empty_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        table(["paired", "--runs", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert err.startswith("cdb-table: error: --runs") and "holds no finished run" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
