"""pack=auto: the pack size and memory layout that `make bench` measured fastest per run, per device and model.

`make bench` (scripts/bench.py) times packs of K = 1, 2, 4, ... runs of each model in both memory layouts. Per-run
speed-up of (K, layout) = K x (step time of one run alone) / (step time of the pack of K in that layout), where a
run alone is a pack of one in channels-first, the layout a run has unless told otherwise. The rule (`choose`): the
(K, layout) with the best per-run speed-up, where figures within the bench's resolution (RESOLUTION, 2 %) of
the best are a tie, and a tie goes to the smaller K, then to channels-first; one run alone (1.00x) is always a
candidate, so a pack is chosen only when it measured more than 2 % faster per run, and a best of K = 1 keeps the
run's own layout. When the user fixed the layout
(trainer.channels_last on the command line, or true in the config), the pack size is chosen within that layout
against a run alone in it (`layouts` in the record). The record, `pack_defaults.json`, keeps per device
{"models": {model: choice}, "layouts": {model: {layout: choice}}}, each choice {pack, layout, speedup, bench: the
bench's date}; a bench of some models replaces theirs only. A device or model the bench did not time: packs of 1.
"""
from __future__ import annotations

import json
from pathlib import Path

RECORD = Path(__file__).with_name("pack_defaults.json")  # written by `make bench`
LAYOUTS = ("channels_first", "channels_last")


# Two speed-ups closer than this (relative) are a tie: what the bench resolves. In the quiet `make bench` of
# 2026-12-05 the same case timed twice differed by up to 1.8 % (the allocator A/B's two rounds), and one run through
# cdb against a bare loop doing the same work measured 0.99-1.02x. A larger pack also costs what the bench does not
# time (memory, packs left over at a sweep's end), so it has to win by more than the noise.
RESOLUTION = 0.02


def _best(cands: list[tuple[int, str, float]]) -> dict:
    # among those tied with the best: the smaller pack, then the default layout (no change that was not measured)
    top = max(c[2] for c in cands)
    tied = [c for c in cands if c[2] * (1 + RESOLUTION) >= top]
    k, layout, s = min(tied, key=lambda c: (c[0], LAYOUTS.index(c[1])))
    return {"pack": k, "layout": layout if k > 1 else None, "speedup": round(s, 2)}


def choose(rows: list[dict], layout: str | None = None) -> dict:
    """{pack, layout (None: the run's own), speedup} for one model's bench rows (k, layout, step_ms); with
    `layout`, within that layout against a run alone in it. Rows without a run alone to compare with: pack 1."""
    base_layout = layout or "channels_first"
    base = next((r["step_ms"] for r in rows if r["k"] == 1 and r["layout"] == base_layout), None)
    if not base:
        return {"pack": 1, "layout": None, "speedup": 1.0, "why": f"no run alone in {base_layout} timed"}
    allowed = (layout,) if layout else LAYOUTS
    cands = [(1, base_layout, 1.0)] + [(r["k"], r["layout"], r["k"] * base / r["step_ms"]) for r in rows
                                       if r["k"] > 1 and r["step_ms"] > 0 and r["layout"] in allowed]
    return _best(cands)


def record_entry(bench: dict) -> dict:
    """The device's entry of pack_defaults.json from a bench result (results/bench.json's dict)."""
    rows = bench["cases"]
    models = list(dict.fromkeys(r.get("model", "lenet5") for r in rows))
    of = {m: [r for r in rows if r.get("model", "lenet5") == m] for m in models}
    date = {"bench": bench.get("date", "?")}
    return {"models": {m: {**choose(of[m]), **date} for m in models},
            "layouts": {m: {lay: {**choose(of[m], lay), **date} for lay in LAYOUTS} for m in models}}


def merged(old: dict | None, new: dict) -> dict:
    """A device's record after a bench of some models: theirs replaced, the other models' kept."""
    old = old or {}
    return {key: {**old.get(key, {}), **new[key]} for key in ("models", "layouts")}


def describe(choice: dict) -> str:
    """The run.log line of a choice, e.g. `8 runs a pack, channels-last, 2.26x per run in make bench of <date>`."""
    date = choice.get("bench", "?")
    if choice["pack"] == 1:
        return f"1 run a pack (no pack measured faster per run than a run alone in make bench of {date})"
    layout = (choice["layout"] or "channels_first").replace("_", "-")
    return f"{choice['pack']} runs a pack, {layout}, {choice['speedup']:.2f}x per run in make bench of {date}"


def default_for(device_type: str, model: str | None, layout: str | None = None,
                record: Path | None = None) -> tuple[int, str | None, str]:
    """(pack size, layout to set or None, the line that says why) for pack=auto."""
    path = record or RECORD
    table = json.loads(path.read_text()) if path.exists() else {}
    entry = table.get(device_type)
    if entry is None:
        return 1, None, f"1 run a pack (make bench recorded nothing for {device_type} in {path.name})"
    own = (entry.get("layouts", {}).get(model) or {}).get(layout) if layout else entry.get("models", {}).get(model)
    if own is None:
        return 1, None, f"1 run a pack (make bench did not time model={model} on {device_type})"
    why = describe(own)
    return int(own["pack"]), own.get("layout"), (why + (f" (layout {layout} as set)" if layout else ""))
