"""`python -m cdb COMMAND [ARGS]`: every console script as a sub-command (run, table, figures, eval, decouple).

Dispatch only: `python -m cdb run loss=ce` is `cdb-run loss=ce`, `python -m cdb table table1 --runs DIR` is
`cdb-table table1 --runs DIR`, and so on. Nothing heavy (torch, Hydra) is imported before the command is
known, so `python -m cdb --help` answers at once.
"""
from __future__ import annotations

import importlib
import sys

from cdb.cli.pipes import quiet_broken_pipe

# sub-command: (module, function, console script, what it does)
COMMANDS = {
    "run": ("cdb.cli.run", "main", "cdb-run", "train one run, or a Hydra sweep with -m (run --help: config groups)"),
    "table": ("cdb.cli.table", "main", "cdb-table", "a paper table, or `compare` of a sweep's settings, from run dirs"),
    "figures": ("cdb.cli.figures", "main", "cdb-figures", "the paper's figures as PNG (Figure 2; Figure 1 of a run)"),
    "eval": ("cdb.cli.evaluate", "main", "cdb-eval", "evaluate a finished run's checkpoint (its test split or --data)"),
    "decouple": ("cdb.cli.decouple", "main", "cdb-decouple", "cRT, tau-norm or LWS on a finished run (Kang et al.)"),
}


def usage() -> str:
    lines = ["usage: python -m cdb COMMAND [ARGS ...]", "", "commands (each is also a console script):"]
    lines += [f"  {name:<8} {script:<12} {what}" for name, (_, _, script, what) in COMMANDS.items()]
    lines += ["", "python -m cdb COMMAND --help shows a command's own help, e.g. `python -m cdb run --help`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        with quiet_broken_pipe():
            print(usage())
        raise SystemExit(0 if argv else 2)
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"cdb: error: {name!r} is not a command: one of {list(COMMANDS)} (python -m cdb --help)",
              file=sys.stderr)
        raise SystemExit(2)
    module, function, _, _ = COMMANDS[name]
    command = getattr(importlib.import_module(module), function)
    if name in ("figures", "eval"):
        command(rest, prog=f"python -m cdb {name}")   # the PNGs and eval reports record the command that made them
    else:
        command(rest)


if __name__ == "__main__":
    main()
