"""Paired comparisons of CDB-CE against each rival of Tables 1-2, seed by seed (`cdb-table paired`).

The MNIST splits are drawn from the seed, so two methods trained at the same seed and ratio see the same training,
validation and test images: the runs pair up by seed, and the seed-to-seed variation of the split cancels in each
difference. For every (ratio, rival) where CDB-CE (the table's reference row: Table 1's CDB-CE with the dynamic tau,
Table 2's dynamic tau) and the rival both have a test error at the same seeds, d_s = CDB-CE's error - the rival's
at seed s (negative: CDB-CE has the lower error), and the report gives

- the mean of d with its 95 % confidence interval from Student's t with n - 1 degrees of freedom
  (mean ± t_{0.975, n-1} · sd / sqrt(n), sd with ddof = 1);
- wins / ties / losses: the seeds where CDB-CE's error is below / equal to / above the rival's;
- the paired t test's two-sided p (scipy.stats.ttest_rel), the primary test;
- the Wilcoxon signed-rank test's two-sided p (scipy.stats.wilcoxon; exact where scipy's default takes it) where
  n >= WILCOXON_MIN_N: with n pairs its p cannot go below 2 / 2**n (0.25 at n = 3, 0.0625 at n = 5), so at fewer
  pairs it could never reject at the 5 % level and is not shown.

The runs are those the table of the same name takes (cdb.report.tables: same cells, same settings check, a copy of a
seed counted once); a diverged run has no test error, so its seed is left out of that pair (and counted).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import pandas as pd

from cdb.core.errors import CdbError
from cdb.report.runs import RunRecord, get, load_runs
from cdb.report.tables import SPECS
from cdb.report.spec import contributions
from cdb.rundir.io import atomic_write_text, check_out_dir

WILCOXON_MIN_N = 6
NAME = "paired_comparisons"
FORMATS = {"md": "md", "csv": "csv"}
# table -> (reference row, the rows compared with it)
PAIRINGS = {
    "table1": ("CDB-CE", ["CE", "IFW", "Focal", "CB", "EQL", "L2RW"]),
    "table2": ("dynamic", ["0.5", "1", "1.5", "2", "5", "7"]),
}
COLUMNS = ["table", "ratio", "reference", "rival", "n", "seeds", "reference_mean", "rival_mean", "mean_diff",
           "ci_low", "ci_high", "wins", "ties", "losses", "t", "p_t", "wilcoxon_w", "p_wilcoxon", "left_out"]


@dataclass
class Paired:
    """The statistics of one set of paired differences d = reference - rival."""
    n: int
    mean: float
    ci_low: float
    ci_high: float
    wins: int     # d < 0: the reference has the lower error
    ties: int
    losses: int
    t: float
    p_t: float
    w: float
    p_w: float


def paired_stats(reference: Sequence[float], rival: Sequence[float], level: float = 0.95) -> Paired:
    """Paired statistics of reference - rival (equal-length sequences, pair i = seed i); n >= 2 for a CI and tests."""
    from scipy import stats  # start-up: at top, +1.4 s (median of 7, loaded machine) on every cdb-table command

    a, b = pd.Series(reference, dtype=float).to_numpy(), pd.Series(rival, dtype=float).to_numpy()
    if a.shape != b.shape:
        raise ValueError(f"paired samples of different lengths: {len(a)} and {len(b)}")
    d = a - b
    n = len(d)
    nan = math.nan
    mean = float(d.mean()) if n else nan
    wins, ties, losses = int((d < 0).sum()), int((d == 0).sum()), int((d > 0).sum())
    if n < 2:
        return Paired(n, mean, nan, nan, wins, ties, losses, nan, nan, nan, nan)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * float(d.std(ddof=1)) / math.sqrt(n)
    if (d == d[0]).all():   # no spread: t is undefined (scipy warns); the CI is the point itself
        t, p_t = nan, nan
    else:
        res = stats.ttest_rel(a, b)
        t, p_t = float(res.statistic), float(res.pvalue)
    w, p_w = nan, nan
    if n >= WILCOXON_MIN_N and (d != 0).any():
        res = stats.wilcoxon(d)
        w, p_w = float(res.statistic), float(res.pvalue)
    return Paired(n, mean, mean - half, mean + half, wins, ties, losses, t, p_t, w, p_w)


def seed_values(spec_name: str, runs: list[RunRecord]) -> pd.DataFrame:
    """One row per (row, col, seed) of table `spec_name`'s cells: value (NaN for a diverged run)."""
    contrib = contributions(SPECS[spec_name], runs)
    seeds = [int(get(r.cfg, "seed", 0)) for r in contrib["run"]]
    return contrib.assign(seed=seeds)[["row", "col", "seed", "value"]]


def comparisons(spec_name: str, runs: list[RunRecord]) -> pd.DataFrame:
    """COLUMNS, one row per (ratio, rival) of table `spec_name` with at least one seed where both have a value;
    ratios in the table's order, rivals in PAIRINGS' order."""
    reference, rivals = PAIRINGS[spec_name]
    values = seed_values(spec_name, runs)
    out = []
    for col in SPECS[spec_name].cols:
        ref = values[(values["row"] == reference) & (values["col"] == col)].set_index("seed")["value"]
        for rival in rivals:
            other = values[(values["row"] == rival) & (values["col"] == col)].set_index("seed")["value"]
            shared = sorted(set(ref.index) & set(other.index))
            usable = [s for s in shared if not (math.isnan(ref[s]) or math.isnan(other[s]))]
            if not usable:
                continue
            st = paired_stats([ref[s] for s in usable], [other[s] for s in usable])
            out.append({"table": spec_name, "ratio": col, "reference": reference, "rival": rival, "n": st.n,
                        "seeds": " ".join(map(str, usable)),
                        "reference_mean": float(ref[usable].mean()), "rival_mean": float(other[usable].mean()),
                        "mean_diff": st.mean, "ci_low": st.ci_low, "ci_high": st.ci_high, "wins": st.wins,
                        "ties": st.ties, "losses": st.losses, "t": st.t, "p_t": st.p_t, "wilcoxon_w": st.w,
                        "p_wilcoxon": st.p_w, "left_out": len(shared) - len(usable)})
    return pd.DataFrame(out, columns=COLUMNS)


def _num(x: float, digits: int = 2) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.3f}" if x >= 0.001 else f"{x:.1e}"


def markdown_table(frame: pd.DataFrame) -> str:
    rows = []
    for r in frame.itertuples():
        wins = f"{r.wins}/{r.n}" + (f" ({r.ties} tied)" if r.ties else "")
        rows.append({"r": r.ratio, "rival": r.rival, "n": str(r.n) + (f" (+{r.left_out} diverged)" if r.left_out
                                                                       else ""),
                     f"{r.reference} mean": _num(r.reference_mean), "rival mean": _num(r.rival_mean),
                     f"mean diff ({r.reference} - rival)": _num(r.mean_diff),
                     "95 % CI": "—" if math.isnan(r.ci_low) else f"[{r.ci_low:.2f}, {r.ci_high:.2f}]",
                     f"{r.reference} wins": wins, "paired t p": _p(r.p_t), "Wilcoxon p": _p(r.p_wilcoxon)})
    return pd.DataFrame(rows).to_markdown(index=False, tablefmt="github", disable_numparse=True)


TITLES = {"table1": "Table 1: CDB-CE (dynamic tau) against each method, seed by seed",
          "table2": "Table 2: the dynamic tau against each fixed tau, seed by seed"}
INTROS = {"table1": "CDB-CE is the Table 1 row (dynamic tau, the authors' normalisation); d = CDB-CE - the rival.",
          "table2": "Every row is CDB-CE; the rival is a fixed tau, and d = the dynamic tau's error - the fixed "
                    "tau's (negative: the dynamic tau lower)."}
METHOD_NOTE = (
    "Each line pairs the runs of CDB-CE and a rival at the same ratio and seed (the seed draws the split, so both "
    "saw the same images): d = CDB-CE's test error - the rival's, in points of test error (%); negative: CDB-CE "
    "lower. n: the seeds both have (a diverged run has no value: its seed is left out and counted); the two means "
    "are over those seeds only, so a table cell with more seeds can print another mean. Mean diff: the mean of d; 95 % CI: mean ± t(0.975, n - 1) · sd(d) / sqrt(n), sd with ddof = 1 (the tables print the "
    "population std, ddof = 0). Wins: the seeds where CDB-CE's error is lower. Paired t p: two-sided, "
    "scipy.stats.ttest_rel; it is the primary test because with 3 pairs the Wilcoxon signed-rank test's exact "
    "two-sided p cannot go below 2 / 2^3 = 0.25 whatever the data. Wilcoxon p: two-sided, "
    f"scipy.stats.wilcoxon (exact for these n without ties), shown from n = {WILCOXON_MIN_N} pairs (the fewest at "
    "which its p can fall below 0.05): it does not assume normal differences, which 3-10 pairs cannot check. "
    "The p-values are not adjusted for the number of comparisons (6 rivals x 5 ratios a table): at the 5 % level "
    "about one in twenty true nulls reads as a difference. A CI or test needs n >= 2; a line with n = 1 gives d "
    "alone.")


@dataclass
class PairedReport:
    frames: dict[str, pd.DataFrame]
    where: str
    n_runs: int
    command: str = ""
    notes: Sequence[str] = ()

    def csv(self) -> str:
        frames = [f for f in self.frames.values() if not f.empty] or [pd.DataFrame(columns=COLUMNS)]
        frame = pd.concat(frames, ignore_index=True)
        return frame.to_csv(index=False, float_format="%.6g", lineterminator="\n")

    def markdown(self) -> str:
        md = ["# Paired comparisons: CDB-CE against each rival of Tables 1-2, seed by seed", "",
              f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `cdb-table paired` from "
              f"{self.n_runs} finished runs under `{self.where}`.", "",
              f"Command: `{self.command}`" if self.command else "Command: (not recorded)", "",
              METHOD_NOTE, ""]
        for name, frame in self.frames.items():
            md += [f"## {TITLES[name]}", "", INTROS[name], ""]
            if frame.empty:
                md += ["No ratio has a seed where both have a finished run.", ""]
                continue
            md += [markdown_table(frame), ""]
            missing = [c for c in SPECS[name].cols if c not in set(frame["ratio"])]
            if missing:
                md += [f"No shared seed (not compared) at r = {', '.join(missing)}.", ""]
        md += [f"- {note}" for note in self.notes]
        return "\n".join(md).rstrip() + "\n"

    def text(self, fmt: str) -> str:
        if fmt not in FORMATS:
            raise CdbError(f"--format {fmt!r} is not allowed for `cdb-table paired`: one or more of {list(FORMATS)}")
        return {"md": self.markdown, "csv": self.csv}[fmt]()


def make_paired(runs, exclude: Sequence[str] = (), command: str = "", notes: Sequence[str] = ()) -> PairedReport:
    """The paired comparisons of Tables 1 and 2 from the finished runs under `runs` (less `exclude`)."""
    loaded = load_runs(runs, exclude)
    where = ", ".join(map(str, [runs] if isinstance(runs, (str, Path)) else runs))
    if exclude:
        where += " except " + ", ".join(exclude)
    if not loaded:
        raise CdbError(f"--runs {where!r} holds no finished run (metrics.json with status complete)")
    frames = {name: comparisons(name, loaded) for name in PAIRINGS}
    return PairedReport(frames, where, len(loaded), command, notes)


def build_paired(runs, out_dir: str | Path, exclude: Sequence[str] = (), command: str = "",
                 formats: Sequence[str] = ("md", "csv"), notes: Sequence[str] = ()) -> list[Path]:
    """Write out_dir/paired_comparisons.<ext> for each format; returns the paths, in the order of `formats`."""
    check_out_dir(out_dir)
    report = make_paired(runs, exclude, command, notes)
    texts = {fmt: report.text(fmt) for fmt in formats}
    paths = [Path(out_dir) / f"{NAME}.{FORMATS[fmt]}" for fmt in texts]
    for path, text in zip(paths, texts.values()):
        atomic_write_text(path, text)
    return paths
