"""`cdb-table NAME --runs DIR` (and `python -m cdb table`): a paper table, `compare`, or `paired` (CDB-CE against each
rival of Tables 1-2, seed by seed: paired_comparisons.md/.csv) from run directories."""
from __future__ import annotations

import argparse
import sys

from cdb.cli.pipes import one_line_errors, quiet_broken_pipe
from cdb.core.errors import CdbError
from cdb.report.paired import NAME, build_paired, make_paired
from cdb.report.spec import FORMATS
from cdb.report.tables import SPECS, build_table, make_table


def main(argv: list[str] | None = None) -> None:
    with one_line_errors("cdb-table"), quiet_broken_pipe():
        build(sys.argv[1:] if argv is None else argv)


def build(argv: list[str]) -> None:
    """Parse cdb-table's arguments, then print the table (no --out, or --out -) or write it under --out, print it
    and name every file written (on standard error, so that standard output is the table alone)."""
    p = argparse.ArgumentParser(
        prog="cdb-table", description="Build a table from run directories: a paper table (mean ± std over seeds "
        "beside the paper's number), `compare`: every setting of a sweep side by side, or `paired`: CDB-CE against "
        "each rival of Tables 1-2 seed by seed (mean difference, 95 % CI, wins, paired t and Wilcoxon p), written "
        "as paired_comparisons.md/.csv.")
    p.add_argument("name", help=f"one of {sorted(SPECS) + ['compare', 'paired']}")
    p.add_argument("--runs", required=True, nargs="+", metavar="DIR_OR_GLOB",
                   help="folder(s) or glob(s) of folders holding run directories (searched recursively); quote a "
                        "glob ('outputs/sweep*') or let the shell expand it")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help="leave out the run directories whose path matches PATTERN (shell-style, `*` also matches "
                        "`/`; repeatable), e.g. --exclude '*loss.normalize=none*'")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="the folder NAME.<ext> is written into (e.g. results), replacing files of that name there; "
                        "without --out (or with '-') the first format is printed and nothing is written")
    p.add_argument("--format", default="md,csv", metavar="FMT[,FMT]",
                   help=f"comma-separated, from {list(FORMATS)} (latex writes NAME.tex); the first one is also "
                        "printed (default: md,csv)")
    p.add_argument("--by", default="override", metavar="override|KEY",
                   help="compare only: one row per run-directory override name without the seed (default), or "
                        "per value of a config key such as loss.label")
    p.add_argument("--best-of", default=None, metavar="KEY",
                   help="compare only: for each value of config key KEY (e.g. loss.label: one tuned study per "
                        "method), only the setting with the highest balanced validation accuracy (never a test value)")
    p.add_argument("--select", default="run", metavar="run|last|best|both",
                   help="compare only: the checkpoint each run reports (run, the default: its trainer.select), or "
                        "the last / best-validation one / both from every run's metrics.json, in rows named "
                        "trainer.select=last / best (one set of runs gives both choices)")
    p.add_argument("--command", default="", help="the command that produced the runs, recorded in the table")
    p.add_argument("--beside", nargs="+", metavar="DIR_OR_GLOB",
                   help="runs of the same table under another profile (e.g. the paper's full schedule), shown in a "
                        "section after the table with only the columns they fill")
    p.add_argument("--beside-command", default="", help="the command that produced the --beside runs")
    p.add_argument("--note", action="append", default=[], metavar="TEXT",
                   help="a line printed under the table's settings (repeatable), e.g. what the profile is")
    args = p.parse_args(argv)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    for fmt in formats or [args.format]:
        if fmt not in FORMATS:
            raise CdbError(f"--format {fmt!r} is not allowed: one or more of {list(FORMATS)}, comma-separated")
    if args.name == "paired":
        paired(args, formats)
        return
    if args.out in (None, "-"):
        print(make_table(args.name, args.runs, args.command, args.by, args.beside, args.beside_command,
                         args.note, best_of=args.best_of, select=args.select, exclude=args.exclude
                         ).text(formats[0]), end="")
        if args.out is None:  # a table is only written where the user says, never over results/ by default
            exts = ", ".join(f"{args.name}.{FORMATS[f]}" for f in formats)
            print(f"cdb-table: printed only, nothing written; --out DIR writes {exts} there", file=sys.stderr)
        return
    paths = build_table(args.name, args.runs, args.out, args.command, formats, args.by, args.beside,
                        args.beside_command, args.note, best_of=args.best_of, select=args.select,
                        exclude=args.exclude)
    print(paths[0].read_text(), end="")
    for path in paths:
        print(f"cdb-table: wrote {path}", file=sys.stderr)


def paired(args, formats: list[str]) -> None:
    """`cdb-table paired`: print the comparisons, or write paired_comparisons.<ext> under --out and name each file."""
    for flag, value in (("--beside", args.beside), ("--best-of", args.best_of)):
        if value:
            raise CdbError(f"{flag} is not for `cdb-table paired`")
    if args.out in (None, "-"):
        print(make_paired(args.runs, args.exclude, args.command, args.note).text(formats[0]), end="")
        if args.out is None:
            print(f"cdb-table: printed only, nothing written; --out DIR writes {NAME}.md, .csv there", file=sys.stderr)
        return
    paths = build_paired(args.runs, args.out, args.exclude, args.command, formats, args.note)
    print(paths[0].read_text(), end="")
    for path in paths:
        print(f"cdb-table: wrote {path}", file=sys.stderr)
