"""`cdb-figures figure2|run|table1|table2 ...` (and `python -m cdb figures`): the paper's figures, and Tables 1-2 as
pictures (test error against the majority ratio, ours beside the paper's), as PNG files.

Each PNG written is printed (its path, one a line). Without --out they go to results/, but a file already there
is refused in one line, never replaced: replacing one takes an explicit `--out results`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cdb.cli.pipes import one_line_errors
from cdb.core.errors import CdbError
from cdb.report.figures import (FIGURE2, FIGURE2_TAUS, TABLE_FIGURES, figure2, run_figure_paths, run_figures,
                                table_figure, table_figure_path)
from cdb.rundir.io import check_out_dir


DEFAULT_OUT = Path("results")


def main(argv: list[str] | None = None, prog: str = "cdb-figures") -> None:
    """`cdb-figures figure2|run ...`; `prog` is how it was invoked, recorded in each PNG."""
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog=prog, description="Write the paper's figures as PNG files.")
    sub = p.add_subparsers(dest="what", required=True)
    out_help = (f"folder for the PNG files, replacing files of that name there (default: {DEFAULT_OUT}, where an "
                "existing file is only replaced when --out names the folder)")
    f2 = sub.add_parser("figure2", help="weight vs difficulty for several tau (paper Figure 2)")
    f2.add_argument("--taus", default=",".join(f"{t:g}" for t in FIGURE2_TAUS), help="comma-separated tau values")
    f2.add_argument("--out", default=None, metavar="DIR", help=out_help)
    r = sub.add_parser("run", help="Figure 1 and class weights / tau over time of one run directory")
    r.add_argument("run_dir")
    r.add_argument("--out", default=None, metavar="DIR", help=out_help)
    r.add_argument("--name", default=None, help="file name prefix (default: from the run directory)")
    for name in TABLE_FIGURES:
        t = sub.add_parser(name, help=f"{name.capitalize()} as a picture: test error against the majority ratio, one "
                           "line per row (ours: mean over the runs, bar lowest to highest) beside the paper's points")
        t.add_argument("--runs", required=True, nargs="+", metavar="DIR_OR_GLOB",
                       help="folder(s) or glob(s) of run directories, as for cdb-table")
        t.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                       help="leave out the run directories whose path matches PATTERN (as for cdb-table)")
        t.add_argument("--out", default=None, metavar="DIR", help=out_help)
    args = p.parse_args(argv)
    command = " ".join([prog, *argv])
    with one_line_errors(prog):
        out = check_out_dir(DEFAULT_OUT if args.out is None else args.out)
        if args.what in TABLE_FIGURES:
            planned = [table_figure_path(args.what, out)]
        elif args.what == "figure2":
            planned = [out / FIGURE2]
        else:
            planned = run_figure_paths(Path(args.run_dir), out, args.name)
        if args.out is None:  # never replace a result by accident: the default folder keeps what it holds
            for path in planned:
                if path.exists():
                    raise CdbError(f"{path} exists and was kept: pass --out {out} to replace it, or --out DIR to "
                                   "write elsewhere")
        if args.what == "figure2":
            try:
                taus = [float(t) for t in args.taus.split(",")]
            except ValueError:
                raise CdbError(f"--taus={args.taus!r} is not allowed: comma-separated numbers") from None
            paths = [figure2(out, taus, command)]
        elif args.what in TABLE_FIGURES:
            paths = [table_figure(args.what, args.runs, out, args.exclude, command)]
        else:
            paths = run_figures(Path(args.run_dir), out, args.name, command)
    for path in paths:
        print(path)
