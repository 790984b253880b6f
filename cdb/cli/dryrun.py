"""`cdb-run ... dry_run=true`: print what a run would train on (cdb.build.dryrun.report), and write nothing.

cdb-run hands the command line here before Hydra starts, so no run directory, .hydra/ folder or log file is made.
"""
from __future__ import annotations

from cdb.config import compose
from cdb.core.errors import ConfigError

FLAG = "dry_run"


def requested(argv: list[str]) -> tuple[bool, list[str]]:
    """(whether `dry_run=true` is on the command line, the command line without any dry_run=... item)."""
    ours = [a for a in argv if a.lstrip("+~").split("=", 1)[0] == FLAG]
    rest = [a for a in argv if a not in ours]
    on = False
    for a in ours:
        value = a.split("=", 1)[1].lower() if "=" in a else ""
        if value not in ("true", "false"):
            raise ConfigError(f"{a!r} is not allowed: dry_run=true or dry_run=false")
        on = value == "true"
    return on, rest


def main(overrides: list[str]) -> None:
    # start-up: cdb.cli.run imports this module; cdb.build (torch) at top adds 9.5 s to `cdb-run --help` (see there)
    from cdb.build.checks import check_run
    from cdb.build.dryrun import report

    flags = [a for a in overrides if a.startswith("-")]
    if flags:
        raise ConfigError(f"dry_run=true shows one configuration; {flags[0]!r} is not allowed with it "
                          "(no -m/--multirun or other flags)")
    cfg = compose(overrides)
    check_run(cfg, overrides)  # the checks a run makes: a value the run refuses, the dry run refuses in its words
    print(report(cfg))
