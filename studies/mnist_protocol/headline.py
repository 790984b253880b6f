"""The README's results table: Table 1's headline column (r = 0.99) from the committed results, each method beside the
paper and paired with CDB-CE seed by seed (results/table1.csv, results/paired_comparisons.csv; `make campaign-tables`
writes both). tests/studies/test_headline_table.py keeps the README's copy equal to what this prints.

    python studies/mnist_protocol/headline.py [--results results]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

RATIO = 0.99
ORDER = ("CE", "IFW", "Focal", "CB", "EQL", "L2RW", "CDB-CE")


def headline(results: Path) -> str:
    table = pd.read_csv(results / "table1.csv")
    table = table[(table.table == "table1") & (table.col.round(4) == RATIO)].set_index("row")
    paired = pd.read_csv(results / "paired_comparisons.csv")
    paired = paired[(paired.table == "table1") & (paired.ratio.round(4) == RATIO)].set_index("rival")
    lines = ["| method | paper | ours (n) | CDB-CE minus it, paired (95 % CI) | CDB-CE lower in | paired t p |",
             "|---|---|---|---|---|---|"]
    for method in ORDER:
        t = table.loc[method]
        ours = f"{t['mean']:.2f} ± {t['std']:.2f} ({int(t['n'])})" if t["n"] else "no run"
        if method in paired.index:
            p = paired.loc[method]
            diff = f"{p.mean_diff:+.2f} ({p.ci_low:+.2f} to {p.ci_high:+.2f})"
            wins, pt = f"{int(p.wins)} of {int(p.n)} seeds", f"{p.p_t:.3f}"
        else:
            diff, wins, pt = "", "", ""
        lines.append(f"| {method} | {t['paper']} | {ours} | {diff} | {wins} | {pt} |")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    print(headline(ap.parse_args().results))
