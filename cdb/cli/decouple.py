"""`cdb-decouple RUN_DIR --method crt|tau_norm|lws` (and `python -m cdb decouple`): the decoupled second stage of
Kang et al. 2020 on a finished run, written to a new run directory (cdb.build.decouple)."""
from __future__ import annotations

import argparse
import logging
import sys

from cdb.cli.pipes import one_line_errors, quiet_broken_pipe

PROG = "cdb-decouple"


def _taus(text: str) -> list[float]:
    """'0:2:0.1' (start:stop:step, stop included) or '0,0.5,1'."""
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            count = int(round((stop - start) / step))
            return [round(start + i * step, 10) for i in range(count + 1)]
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give start:stop:step (e.g. 0:2:0.1) or a list (0,0.5,1)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="The decoupled second stage of Kang et al. 2020 on a finished run (its features "
        "frozen), written to a new run directory that `cdb-table compare` lists beside the source: crt re-trains a "
        "re-initialised classifier with class-balanced sampling, tau_norm divides each class's weights by their "
        "norm to the power tau (tau chosen on the validation split), lws learns a scale per class on the frozen "
        "classifier's logits with class-balanced sampling.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory (metrics.json with status complete)")
    p.add_argument("--method", required=True, choices=["crt", "tau_norm", "lws"])
    p.add_argument("--out", metavar="DIR", help="the new run directory (default: beside the source, "
                   "<sweep>/<overrides>,decouple=METHOD/seed=<n>)")
    p.add_argument("--checkpoint", default="selected", choices=["selected", "last", "best"],
                   help="which checkpoint of the source (default: the one its metrics.json reports)")
    p.add_argument("--length", type=int, metavar="N", help="crt, lws: units to train, in the source's trainer.unit "
                   "(default: 10 passes over the training split)")
    p.add_argument("--lr", type=float, help="crt, lws: initial lr of the cosine schedule (default: the source's)")
    p.add_argument("--batch-size", type=int, help="crt, lws: batch size (default: the source's)")
    p.add_argument("--taus", type=_taus, metavar="GRID", help="tau_norm: the grid tau is chosen from on the "
                   "validation split (default 0:2:0.1)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the source's trainer.device)")
    p.add_argument("--data-root", help="where the source's dataset lives now (default: its recorded dataset.root)")
    p.add_argument("--threads", type=int, help="CPU threads (default: PyTorch's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    console.addFilter(lambda r: getattr(r, "console", True))
    logging.getLogger().addHandler(console)
    with one_line_errors(PROG), quiet_broken_pipe():
        # start-up: at module top these (torch) add 10.4 s (median of 7, loaded machine) to `cdb-decouple --help`
        from cdb.build.decouple import decouple
        from cdb.core.metrics import result_line

        run_dir, metrics = decouple(args.run_dir, args.method, args.out, args.length, args.lr, args.batch_size,
                                    args.taus, args.checkpoint, args.device, args.threads,
                                    False if args.no_progress else None, args.data_root)
        print(f"{run_dir}: {metrics['decouple']['label']}: {result_line(metrics)}")
