"""The headline column (r = 0.99) of Table 1 or Table 2 as the README and docs/results.md show it, from the committed
results: each row beside the paper and paired with CDB-CE (Table 1) or the dynamic tau (Table 2) seed by seed
(results/table1.csv, table2.csv, paired_comparisons.csv; `make campaign-tables` writes them).
tests/studies/test_headline_table.py keeps the README's and docs/results.md's copies equal to what this prints.

    python studies/mnist_protocol/headline.py [table1|table2] [--results results]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

RATIO = 0.99
ROWS = {"table1": ("CE", "IFW", "Focal", "CB", "EQL", "L2RW", "CDB-CE"),
        "table2": ("0.5", "1", "1.5", "2", "5", "7", "dynamic")}
HEAD = {"table1": ("method", "CDB-CE"), "table2": ("tau", "the dynamic tau")}


def headline(results: Path, table: str = "table1") -> str:
    cells = pd.read_csv(results / f"{table}.csv", dtype={"row": str})
    cells = cells[(cells.table == table) & (cells.col.round(4) == RATIO)].set_index("row")
    paired = pd.read_csv(results / "paired_comparisons.csv", dtype={"rival": str})
    paired = paired[(paired.table == table) & (paired.ratio.round(4) == RATIO)].set_index("rival")
    what, ref = HEAD[table]
    lines = [f"| {what} | paper | ours (n) | {ref} minus it, paired (95 % CI) | {ref} lower in | paired t p |",
             "|---|---|---|---|---|---|"]
    for row in ROWS[table]:
        c = cells.loc[row]
        ours = f"{c['mean']:.2f} ± {c['std']:.2f} ({int(c['n'])})" if c["n"] else "no run"
        pair = ["", "", ""]
        if row in paired.index:
            p = paired.loc[row]
            tied = f" ({int(p.ties)} tied)" if p.ties else ""
            pair = [f"{p.mean_diff:+.2f} ({p.ci_low:+.2f} to {p.ci_high:+.2f})",
                    f"{int(p.wins)} of {int(p.n)} seeds{tied}", f"{p.p_t:.3f}" if p.p_t >= 0.001 else "< 0.001"]
        lines.append(f"| {row} | {c['paper']} | {ours} | {' | '.join(pair)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table", nargs="?", choices=sorted(ROWS), default="table1")
    ap.add_argument("--results", type=Path, default=Path("results"))
    args = ap.parse_args()
    print(headline(args.results, args.table))
