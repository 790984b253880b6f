"""Which MNIST protocol did the paper run? results/protocol_calibration.{md,csv,png} from the calibration runs.

`make protocol-calibration` trains the runs that studies/mnist_protocol/protocol_runs.py lists (protocols P1-P4, CE, IFW, CB and
Ren et al.'s class-ratio IFW at r = 0.99, CE and IFW at r = 0.9 and 0.995, seeds 0-2; CDB-CE at r = 0.99; the
campaign adds seeds 3-9 to the CE, IFW and CB cells of P2-P4, `--part ten`), then calls this script. Every cell (protocol, method, r) is the mean ± std (population, ddof=0) over the finished
seeds of the last checkpoint's test error, beside the paper's Table 1 value, and counts as *within* when it lies
within two of the paper's standard deviations of the paper's mean. P1's seeds 0-1 come from
results/paper_schedule.csv (`make paper-schedule`), its seed 2 from a run directory.

The rows of the table already written (`--keep`, results/protocol_calibration.csv by default) stay in it where no
run directory under `--runs` holds the same run (protocol, method, ratio, seed): a campaign continued on another
machine (`studies/mnist_protocol/protocol_runs.py --skip`) adds to the table instead of replacing it. Their `source` column still
names the run directory they came from.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cdb.report import paper  # noqa: E402
from cdb.core.metrics import COLLAPSE_RULE, run_collapsed  # noqa: E402
from cdb.report.figures import pyplot, save_png  # noqa: E402
from cdb.report.runs import get, load_runs  # noqa: E402
from cdb.rundir.io import atomic_write_text  # noqa: E402
from protocol_runs import BASELINE_CELLS, CLAIM_PROTOCOLS, LABELS  # noqa: E402  (scripts/, this script's own folder)

PROTOCOLS = {  # run folder under the output root -> (name, what it is)
    "paper_schedule": ("P1", "LeNet-5, 4000 passes of 50 steps (the paper's numbers read as epochs; trainer=mnist)"),
    "calib_p2": ("P2", "Ren et al.'s network, 4000 steps, lr 1e-3 x0.1 after 3000, wd 5e-4, inputs in [0, 1] "
                       "(the paper's numbers read as steps; model=lenet_ren trainer=mnist_steps)"),
    "calib_p3": ("P3", "Ren et al.'s network, their baseline schedule: 8000 steps, lr 1e-3 halved after 4000, no "
                       "weight decay, inputs in [0, 1] (model=lenet_ren trainer=mnist_ren)"),
    "calib_p4": ("P4", "LeNet-5, 4000 steps, lr 1e-3 x0.1 after 3000, wd 5e-4 (trainer=mnist_steps)"),
    "calib_p3s": ("P3s", "P3 truncated to 4000 steps, lr halved after 2000 (Ren et al.'s schedule for their own "
                         "method): the short-profile candidate, same lr, momentum, batch and CDB update cadence"),
}
# a method label's row of the paper's Table 1 where it is not the label itself (every Table 1 row is its own)
PAPER_ROW = {"IFW (Ren et al.'s ratio)": "IFW"}
CALIBRATORS = ("CE", "IFW", "CB")  # no feedback loop: the methods the protocol is read from
# the cells every protocol is compared on (P1: r = 0.99 only); other baseline cells (CB at r = 0.995, trained for
# the tables) are listed among the cells but not counted, so that each protocol is counted on the same cells
CALIBRATION_CELLS = {(LABELS[loss], ratio) for loss, ratio in BASELINE_CELLS}


def method(cfg: dict) -> str:
    label = get(cfg, "loss.label")
    if get(cfg, "loss.name") == "cdb":
        tau = get(cfg, "loss.tau")
        if str(tau) == "dynamic":
            return f"CDB-CE (normalize={get(cfg, 'loss.normalize')})"
        return f"CDB-CE (tau={float(tau):g})"
    return label


def paper_cell(m: str, ratio: float) -> tuple[float, float]:
    """The paper's value for a method label: Table 1's row, or for a fixed tau ("CDB-CE (tau=1)") Table 2's."""
    col = paper.RATIOS.index(f"{ratio:g}")
    if m.startswith("CDB-CE (tau="):
        text = paper.TABLE2[m[len("CDB-CE (tau="):-1]][col]
    else:
        row = m.split(" (normalize")[0]
        text = paper.TABLE1[PAPER_ROW.get(row, row)][col]
    mean, std = (float(v) for v in text.split("±"))
    return mean, std


def run_rows(runs_root: Path, paper_schedule_csv: Path | None) -> pd.DataFrame:
    rows = []
    for folder, (name, _) in PROTOCOLS.items():
        for r in load_runs(runs_root / folder) if (runs_root / folder).is_dir() else []:
            last = r.metrics["checkpoints"]["last"]["test"] if not r.diverged else {}
            rows.append({"protocol": name, "method": method(r.cfg), "ratio": float(get(r.cfg, "dataset.majority_ratio")),
                         "seed": int(r.cfg["seed"]), "error": last.get("error", float("nan")),
                         "collapsed": bool(run_collapsed(r.metrics, "last")) if not r.diverged else False,
                         "diverged": r.diverged,
                         "source": f"{folder}/{r.path.relative_to(runs_root / folder)}"})
    if paper_schedule_csv is not None and paper_schedule_csv.exists():  # P1 seeds 0-1 of `make paper-schedule`
        ps = pd.read_csv(paper_schedule_csv)
        for _, row in ps[ps["setting"].isin(CALIBRATORS) & ps["last_error"].notna()].iterrows():
            if not any(x["protocol"] == "P1" and x["method"] == row["setting"] and x["seed"] == row["seed"]
                       for x in rows):
                rows.append({"protocol": "P1", "method": row["setting"], "ratio": 0.99, "seed": int(row["seed"]),
                             "error": float(row["last_error"]), "collapsed": False, "diverged": False,
                             "source": f"{paper_schedule_csv.name}: {row['run']}"})
    return pd.DataFrame(rows)


KEY = ["protocol", "method", "ratio", "seed"]


def with_kept(runs: pd.DataFrame, keep_csv: Path | None) -> pd.DataFrame:
    """`runs` plus the rows of an earlier table whose run is not among `runs`."""
    if keep_csv is None or not keep_csv.exists():
        return runs
    kept = pd.read_csv(keep_csv)
    if runs.empty:
        return kept
    have = set(zip(runs["protocol"], runs["method"], runs["ratio"].round(4), runs["seed"]))
    new = [k not in have for k in zip(kept["protocol"], kept["method"], kept["ratio"].round(4), kept["seed"])]
    return pd.concat([runs, kept[new]], ignore_index=True)


def cells(runs: pd.DataFrame) -> pd.DataFrame:
    g = runs[~runs["diverged"]].groupby(["protocol", "method", "ratio"])["error"]
    out = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=0), "n": g.count(),
                        "collapsed": runs.groupby(["protocol", "method", "ratio"])["collapsed"].sum()}).reset_index()
    paper_vals = [paper_cell(m, r) for m, r in zip(out["method"], out["ratio"])]
    out["paper_mean"] = [p[0] for p in paper_vals]
    out["paper_std"] = [p[1] for p in paper_vals]
    out["within_2sd"] = (out["mean"] - out["paper_mean"]).abs() <= 2 * out["paper_std"]
    return out


RIVALS = ("IFW", "CB", "L2RW")


def agreement(c: pd.DataFrame) -> pd.DataFrame:
    """Per protocol: how many of the calibration cells it has, how many of those lie within two of the paper's
    standard deviations, and the largest distance of a cell's mean from the paper's, in the paper's standard
    deviations (which tells apart protocols that tie on the count)."""
    counted = pd.Series([(m, round(r, 4)) in CALIBRATION_CELLS for m, r in zip(c["method"], c["ratio"])],
                        index=c.index)
    rows = []
    for name, _ in PROTOCOLS.values():
        sub = c[(c["protocol"] == name) & counted]
        alt = c[(c["protocol"] == name) & (c["method"] == "IFW (Ren et al.'s ratio)")]
        miss = ((sub["mean"] - sub["paper_mean"]).abs() / sub["paper_std"]).max()
        rows.append({"protocol": name, "baseline cells": len(sub), "within 2 sd": int(sub["within_2sd"].sum()),
                     "largest miss (paper sd)": round(float(miss), 1) if len(sub) else None,
                     "runs": int(sub["n"].sum()),
                     "Ren-ratio IFW cells within": f"{int(alt['within_2sd'].sum())} of {len(alt)}"})
    return pd.DataFrame(rows)


def best_fits(summary: pd.DataFrame) -> list[str]:
    """The protocols with the most cells within two sd, among those that have every calibration cell (P1, with
    r = 0.99 only, is not compared on the same cells): several where they tie, the smallest largest miss first."""
    full = summary[summary["baseline cells"] == len(CALIBRATION_CELLS)]
    if full.empty:
        return []
    best = full[full["within 2 sd"] == full["within 2 sd"].max()]
    return list(best.sort_values("largest miss (paper sd)", kind="stable")["protocol"])


def claim(runs: pd.DataFrame, protocol: str = CLAIM_PROTOCOLS[0]) -> pd.DataFrame:
    """Does CDB-CE beat IFW, CB and L2RW on `protocol`? Per ratio and CDB-CE variant (dynamic tau, each
    normalisation), over the seeds both have (a seed fixes the split; the baselines have more seeds than CDB-CE
    where the calibration has 10): both means, and in how many of those seeds CDB-CE's error is lower."""
    ok = runs[(runs["protocol"] == protocol) & ~runs["diverged"]]
    rows = []
    for (m, ratio), cdb in ok[ok["method"].str.startswith("CDB-CE (normalize")].groupby(["method", "ratio"]):
        for rival in RIVALS:
            other = ok[(ok["method"] == rival) & (ok["ratio"] == ratio)]
            if other.empty:
                continue
            paired = cdb.merge(other, on="seed", suffixes=("", "_rival"))
            if paired.empty:
                continue
            mine, theirs = paired["error"].mean(), paired["error_rival"].mean()
            rows.append({"ratio": ratio, "CDB-CE": m.removeprefix("CDB-CE "), "rival": rival,
                         "CDB-CE error": mine, "rival error": theirs, "CDB-CE lower": bool(mine < theirs),
                         "seeds CDB-CE lower": f"{int((paired['error'] < paired['error_rival']).sum())} of "
                                               f"{len(paired)}"})
    return pd.DataFrame(rows)


def short_check(runs: pd.DataFrame, full: str = "P3", short: str = "P3s", ratio: float = 0.99) -> pd.DataFrame:
    """Does the short profile keep the full one's results? Per method: the short mean lies within the full
    protocol's seed spread [min, max], and the methods rank in the same order by mean."""
    ok = runs[~runs["diverged"] & (runs["ratio"] == ratio)]
    f = ok[ok["protocol"] == full].groupby("method")["error"].agg(["mean", "min", "max", "count"])
    sh = ok[ok["protocol"] == short].groupby("method")["error"].agg(["mean", "count"])
    both = f.join(sh.add_suffix("_short"), how="inner")
    if both.empty:
        return pd.DataFrame()
    rank_full = both["mean"].rank(method="min").astype(int)
    rank_short = both["mean_short"].rank(method="min").astype(int)
    return pd.DataFrame({"method": both.index, f"{full} mean": both["mean"].values,
                         f"{full} seed range": [f"{a:.2f} .. {b:.2f} ({n})" for a, b, n in
                                                zip(both["min"], both["max"], both["count"])],
                         f"{short} mean": both["mean_short"].values, f"{short} runs": both["count_short"].values,
                         "within range": ((both["mean_short"] >= both["min"]) & (both["mean_short"] <= both["max"])
                                          ).values,
                         f"rank {full}": rank_full.values, f"rank {short}": rank_short.values})


def markdown(c: pd.DataFrame, runs: pd.DataFrame, command: str) -> str:
    lines = ["# MNIST 4/9: which protocol reproduces the paper's baselines?", "",
             f"Made by `{command}`. Test error (%) of the last checkpoint, mean ± std (population) over the finished "
             "seeds (n), beside the paper's Table 1 value (mean ± std over its 10 runs). **within**: the mean lies "
             "within two of the paper's standard deviations of the paper's mean. `c`: runs whose last checkpoint "
             f"collapsed ({COLLAPSE_RULE}). IFW (Ren et al.'s ratio) is compared with the paper's IFW row.", "",
             "## Protocols", ""]
    lines += [f"- **{name}**: {what}" for name, what in PROTOCOLS.values()]
    lines += ["", "## Agreement with the paper (baselines CE, IFW, CB: no feedback loop)", "",
              "Counted on the calibration's cells: CE and IFW at r = 0.9, 0.99, 0.995 and CB at 0.99.", ""]
    summary = agreement(c)
    lines.append(summary.to_markdown(index=False))
    by = summary.set_index("protocol")
    best = best_fits(summary)
    if best:
        n, miss = int(by.loc[best[0], "within 2 sd"]), " and ".join(f"{by.loc[p, 'largest miss (paper sd)']:g}"
                                                                      for p in best)
        lines += ["", f"Best fit: {' and '.join(best)} ({n} of {len(CALIBRATION_CELLS)} cells within two sd"
                      f"{' each' if len(best) > 1 else ''}; largest miss {miss} of the paper's sd)."]
    lines += ["", "![The calibration cells: every seed and each protocol's mean against the paper's mean and two-sd "
              "band](protocol_calibration.png)", "", "## Cells", ""]
    view = c.copy()
    view["ours"] = [f"{m:.2f} ± {s:.2f} ({n}{', ' + str(int(k)) + 'c' if k else ''})"
                    for m, s, n, k in zip(view["mean"], view["std"], view["n"], view["collapsed"])]
    view["paper"] = [f"{m:.2f} ± {s:.2f}" for m, s in zip(view["paper_mean"], view["paper_std"])]
    view["within"] = view["within_2sd"].map({True: "yes", False: "no"})
    lines.append(view[["protocol", "method", "ratio", "ours", "paper", "within"]].to_markdown(index=False))
    for protocol in CLAIM_PROTOCOLS:
        verdict = claim(runs, protocol)
        if verdict.empty:
            continue
        within = by.loc[protocol, "within 2 sd"]
        lines += ["", f"## The paper's claim on {protocol} ({within} of {len(CALIBRATION_CELLS)} baseline "
                      "cells within): does CDB-CE beat IFW, CB and L2RW?", "",
                  "Mean test error (%) over the seeds both have (a seed fixes the split); *seeds CDB-CE lower*: "
                  "of those seeds, the ones where CDB-CE's error is lower.", "",
                  # the ratio as written (0.995), not at the errors' two decimals
                  verdict.assign(ratio=verdict["ratio"].map("{:g}".format),
                                 **{c: verdict[c].map("{:.2f}".format) for c in ("CDB-CE error", "rival error")})
                  .to_markdown(index=False, disable_numparse=True)]
    check = short_check(runs)
    if not check.empty:
        lines += ["", "## The short profile: P3s against P3 at r = 0.99", "",
                  "It keeps P3 when every method's P3s mean lies within P3's seed range and the ranks agree.", "",
                  check.to_markdown(index=False, floatfmt=".2f")]
    lines += ["", f"{len(runs)} runs; per run: results/protocol_calibration.csv (columns protocol, method, ratio, "
              "seed, error, collapsed, diverged, source: the run directory relative to the output root)."]
    return "\n".join(lines) + "\n"


def figure(runs: pd.DataFrame, path: Path, command: str) -> list[tuple[str, float]]:
    """One panel per calibration cell that has runs (CE and IFW at r = 0.9, 0.99, 0.995, CB at 0.99): the paper's
    mean and its two-sd band, and per protocol every seed's test error and their mean. Returns the panels' cells."""
    ok = runs[~runs["diverged"]]
    ordered = sorted(CALIBRATION_CELLS, key=lambda c: (CALIBRATORS.index(c[0]), c[1]))  # CE, IFW, CB; r ascending
    cell_runs = {c: ok[(ok["method"] == c[0]) & (ok["ratio"].round(4) == c[1])] for c in ordered}
    panels = [c for c in ordered if not cell_runs[c].empty]
    if not panels:
        return []
    names = [name for name, _ in PROTOCOLS.values()]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(2.1 * len(panels), 3.2), squeeze=False)
    for ax, (m, ratio) in zip(axes[0], panels):
        mean, std = paper_cell(m, ratio)
        ax.axhspan(mean - 2 * std, mean + 2 * std, color="0.85", label="paper ± 2 sd")
        ax.axhline(mean, color="0.4", lw=1, label="paper mean")
        cell = cell_runs[(m, ratio)]
        for i, name in enumerate(names):
            err = cell.loc[cell["protocol"] == name, "error"]
            if err.empty:
                continue
            ax.plot([i] * len(err), err, ".", color=f"C{i}", alpha=0.5, ms=4)
            ax.plot([i - 0.3, i + 0.3], [err.mean()] * 2, color=f"C{i}", lw=2)
        ax.set_yscale("log")  # a collapsed protocol (50 %) and the paper's 1-15 % in one panel
        ax.set_xticks(range(len(names)), names, fontsize=7)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_title(f"{m}, r = {ratio:g}", fontsize=8)
        for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            axis(plt.FuncFormatter(lambda v, _: f"{v:g}"))  # 20, not 2 x 10^1
        ax.tick_params(axis="y", which="both", labelsize=6)
    axes[0, 0].set_ylabel("test error (%, log scale): seeds (dots), mean (bar)", fontsize=7)
    axes[0, 0].legend(fontsize=6, loc="upper left")
    fig.suptitle("MNIST 4/9: the baselines under each protocol against the paper's Table 1", fontsize=9)
    fig.tight_layout()
    save_png(fig, path, command)
    plt.close(fig)
    return panels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="outputs", help="the output root holding calib_p2, calib_p3, calib_p4, "
                                                      "paper_schedule")
    ap.add_argument("--paper-schedule-csv", default=str(REPO / "results" / "paper_schedule.csv"))
    ap.add_argument("--keep", default=str(REPO / "results" / "protocol_calibration.csv"),
                    help="an earlier table whose rows stay where no run directory replaces them ('' for none)")
    ap.add_argument("--out", default="results")
    ap.add_argument("--command", default="make protocol-calibration")
    args = ap.parse_args()
    runs = with_kept(run_rows(Path(args.runs), Path(args.paper_schedule_csv)), Path(args.keep) if args.keep else None)
    if runs.empty:
        raise SystemExit(f"protocol_calibration: no finished calibration run under {args.runs}")
    c = cells(runs)
    out = Path(args.out)
    atomic_write_text(out / "protocol_calibration.md", markdown(c, runs, args.command))
    atomic_write_text(out / "protocol_calibration.csv", runs.sort_values(["protocol", "method", "ratio", "seed"])
                      .to_csv(index=False, float_format="%.4f"))
    panels = figure(runs, out / "protocol_calibration.png", args.command)
    print(f"wrote {out / 'protocol_calibration.md'}, .csv ({len(runs)} runs, {len(c)} cells) and .png "
          f"({len(panels)} panels)")


if __name__ == "__main__":
    main()
