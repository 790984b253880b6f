"""Watch a sweep's run directories while it trains and keep what they show, even if they disappear later.

    python scripts/sweep_progress.py RUNS_ROOT --out PROGRESS.md --pid PID [--every 10] [--runs-total 70]
                                     [--started EPOCH_SECONDS]

Every `--every` seconds (and once more when PID has exited) it rewrites PROGRESS.md (atomically): the validation
rows each run has written so far (the most ever seen: rows a clean-up deleted afterwards still count), the
seconds since the sweep started, the time per run-unit (one unit, e.g. a step, of one run; set-up included, so an
upper bound) and the time the whole table would take at that rate (`--runs-total` runs of trainer.length units).
It adds the tail of the first run's run.log (as last seen). scripts/gpu_check.sh runs it beside step 3, so
a stopped or killed step still leaves its rows and its time per step in the output folder.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def trainer_of(root: Path) -> dict | None:
    """trainer settings of the first run found (its resolved config.yaml, not Hydra's .hydra/config.yaml)."""
    import yaml

    for p in sorted(root.rglob("config.yaml")):
        if p.parent.name != ".hydra":
            try:
                return yaml.safe_load(p.read_text())["trainer"]
            except Exception:
                continue
    return None


def snapshot(root: Path, seen: dict[str, int], trainer: dict | None) -> dict[str, int]:
    for p in root.rglob("log.jsonl"):
        try:
            rows = sum(1 for line in p.read_text().splitlines() if line.strip())
        except OSError:
            continue
        key = str(p.parent.relative_to(root))
        seen[key] = max(seen.get(key, 0), rows)
    return seen


def report(seen: dict[str, int], trainer: dict | None, elapsed: float, runs_total: int, final: bool) -> str:
    rows = sum(seen.values())
    lines = [f"# Sweep progress ({'final: the sweep process has exited' if final else 'while it runs'})", "",
             f"- {elapsed:.0f} s since the sweep started; {len(seen)} runs started, {rows} validation rows in all"]
    if trainer:
        every, length, unit = trainer["eval_every"], trainer["length"], trainer["unit"]
        units = rows * every
        lines.append(f"- one row per {every} {unit}s; a run is {length} {unit}s")
        if units:
            per = elapsed / units
            lines.append(f"- time per run-{unit}: {1e3 * per:.2f} ms (wall / the {unit}s of all runs; set-up "
                         "included: an upper bound)")
            lines.append(f"- at that rate: one run {per * length / 60:.1f} min of the pack's time, the {runs_total}-run "
                         f"table {per * length * runs_total / 60:.1f} min")
    if not rows:
        lines.append("- no validation row yet, so no time per step")
    lines += ["", "| run | rows |", "| --- | ---: |"] + [f"| {k} | {v} |" for k, v in sorted(seen.items())]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--every", type=float, default=10.0)
    ap.add_argument("--runs-total", type=int, default=70)
    ap.add_argument("--started", type=float, default=None)
    args = ap.parse_args(argv)
    t0 = args.started or time.time()
    seen: dict[str, int] = {}
    trainer, tail = None, []
    while True:
        final = not alive(args.pid)
        if args.root.exists():
            trainer = trainer or trainer_of(args.root)
            snapshot(args.root, seen, trainer)
            logs = sorted(args.root.rglob("run.log"))
            if logs:
                try:
                    tail = logs[0].read_text().splitlines()[-40:]
                except OSError:
                    pass
        text = report(seen, trainer, time.time() - t0, args.runs_total, final)
        if tail:
            text += "\n## The tail of the first run's run.log (as last seen)\n\n```\n" + "\n".join(tail) + "\n```\n"
        write(args.out, text)
        if final:
            print(json.dumps({"rows": sum(seen.values()), "runs": len(seen)}))
            return
        wake = time.time() + args.every
        while time.time() < wake and alive(args.pid):  # a final snapshot within a second of the sweep's end
            time.sleep(1.0)


if __name__ == "__main__":
    main()
