"""`cdb-eval RUN_DIR` (and `python -m cdb eval`): evaluate a finished run's checkpoint on its test split or on a
folder of images of the same classes (cdb.build.evaluate), print the result and write RUN_DIR/eval/<name>.json."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cdb.cli.pipes import one_line_errors, quiet_broken_pipe


def main(argv: list[str] | None = None, prog: str = "cdb-eval") -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(
        prog=prog, description="Evaluate a finished run directory's checkpoint with the metrics training reports: "
        "on its own test split, or on a folder with one sub-folder of images per class of the run. Prints the "
        "result and writes RUN_DIR/eval/<name>.json (never the run's metrics.json).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory cdb-run has finished (config.yaml, "
                   "metrics.json, checkpoints/)")
    p.add_argument("--checkpoint", choices=("best", "last"), default=None,
                   help="which checkpoint (default: the one the run selected, trainer.select)")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="evaluate on this folder instead of the test split: PATH/<class>/<image>, the run's class "
                        "names (its own data is still read, for the normalisation)")
    p.add_argument("--data-root", default=None, metavar="DIR",
                   help="where the run's dataset lives now (default: the dataset.root in its config.yaml)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: the run's trainer.device; the "
                   "run's own device gives its metrics.json numbers)")
    p.add_argument("--name", default=None, help="RUN_DIR/eval/<name>.json (default: <checkpoint>_test, or "
                   "<checkpoint>_data_<folder name> with --data); an earlier file of that name is replaced")
    args = p.parse_args(argv)
    command = " ".join([prog, *argv])
    with one_line_errors(prog), quiet_broken_pipe():
        # start-up: at module top this (torch) adds 10.0 s (median of 7, loaded machine) to `cdb-eval --help`
        from cdb.build.evaluate import evaluate_run

        report, path = evaluate_run(Path(args.run_dir), args.checkpoint, args.data, args.device, args.data_root,
                                    args.name, command)
        t = report["test"]
        per_class = ", ".join(f"{n} {a:.1f}" for n, a in zip(report["class_names"], t["per_class_accuracy"]))
        print(f"{report['run']} [{report['checkpoint']} checkpoint, unit {report['unit']}] on {report['data']} "
              f"({t['n']} images): error {t['error']:.2f}% (accuracy {t['accuracy']:.2f}%, balanced "
              f"{t['macro_recall']:.2f}%; per class {per_class})")
        print(f"{prog}: wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
