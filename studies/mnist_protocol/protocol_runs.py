"""The runs of the MNIST protocol calibration (docs/protocol.md), one `cdb-run` override line each, most
informative first: every protocol's r = 0.99 cell, then CDB-CE at r = 0.99, then the other ratios (P3, the
best fit at r = 0.99, first), then P1's seed 2.

`--skip CSV` leaves out the runs a calibration table (results/protocol_calibration.csv) already holds, so a
campaign that lost its run directories (a new machine) continues where the committed table stopped.

`make protocol-calibration` feeds these lines to `xargs -P $(JOBS)`, one run per line (resume=true: run it again
to continue; finished runs are only reported). The protocols:
  P1  LeNet-5, the paper's numbers read as 4000 passes (protocol=p1: trainer=mnist)
  P2  Ren et al.'s network, the paper's numbers read as 4000 steps (protocol=p2: trainer=mnist_steps), inputs in [0, 1]
  P3  Ren et al.'s network, Ren et al.'s baseline schedule (protocol=p3: trainer=mnist_ren, 8000 steps), inputs in
      [0, 1]: the MNIST default
  P4  LeNet-5, the paper's numbers read as 4000 steps (protocol=p4: trainer=mnist_steps)
Each protocol is a preset of configs/protocol/. `--part campaign` writes its lines for the frozen checkout of
studies/mnist_protocol/protocol_campaign.sh (commit a89e450), which has no protocol group: FROZEN spells each
protocol out in that code's keys, so its lines and run names are those of the records in results/runs/.
"""
from __future__ import annotations

import argparse
import sys

# the short-profile candidate P3s: P3 truncated to 4000 steps with the halving moved to half of them (Ren et al.'s
# own schedule for their method); learning rate, momentum, batch and the CDB update cadence are P3's
P3S = "trainer.length=4000 trainer.milestones=[2001]"
PROTOCOLS = {
    "P1": "name=paper_schedule protocol=p1",
    "P2": "name=calib_p2 protocol=p2",
    "P3": "name=calib_p3 protocol=p3",
    "P4": "name=calib_p4 protocol=p4",
    "P3s": f"name=calib_p3s protocol=p3 {P3S}",
}
# The same protocols in the keys of the campaign's frozen code (commit a89e450: configs/protocol/pN.yaml's header
# names what each sets; tests/studies/test_protocol_scripts.py checks the two spellings compose the same config)
FROZEN = {
    "P1": "name=paper_schedule model=lenet5 trainer=mnist dataset.input_scale=standard",
    "P2": "name=calib_p2 model=lenet_ren trainer=mnist_steps dataset.input_scale=unit",
    "P3": "name=calib_p3 model=lenet_ren trainer=mnist_ren dataset.input_scale=unit",
    "P4": "name=calib_p4 model=lenet5 trainer=mnist_steps dataset.input_scale=standard",
    "P3s": f"name=calib_p3s model=lenet_ren trainer=mnist_ren dataset.input_scale=unit {P3S}",
}
SEEDS = (0, 1, 2)
# the paper reports 10 random splits; its baseline cells are calibrated on 10 seeds where a run costs minutes (P2-P4)
TEN_SEEDS = tuple(range(10))
# the calibration's baseline cells, (loss, ratio): every protocol is counted on these (P1: r = 0.99 only)
BASELINE_CELLS = (("ce", 0.99), ("ifw", 0.99), ("cb", 0.99), ("ce", 0.9), ("ifw", 0.9), ("ce", 0.995), ("ifw", 0.995))
# speed settings only (not in the run directory's name, not in what is computed beyond float summation order)
COMMON = "threads=1 resume=true trainer.progress=false"


def lines(seeds=SEEDS) -> list[str]:
    out = []

    def add(protocol, loss, ratio, seed, extra=""):
        # P1 exactly as `make paper-schedule` trained its seeds 0-1 (default ratio 0.99, channels first)
        fast = " trainer.channels_last=true" if protocol != "P1" else ""
        ratio_arg = f" dataset.majority_ratio={ratio}" if protocol != "P1" else ""
        out.append(f"{PROTOCOLS[protocol]} loss={loss}{ratio_arg} seed={seed} {extra}{COMMON}{fast}")

    step_protocols = ("P4", "P2", "P3")
    for p in step_protocols:  # the r = 0.99 baselines first
        for seed in seeds:
            for loss in ("ce", "ifw", "cb", "ifw_ren"):
                add(p, loss, 0.99, seed)
    for p in step_protocols:  # CDB-CE (the paper's rule, dynamic tau, both normalisations) at r = 0.99
        for seed in seeds:
            for norm in ("mean", "none"):
                add(p, "cdb", 0.99, seed, f"loss.normalize={norm} ")
    for p in ("P3", "P2", "P4"):  # the other ratios
        for ratio in (0.9, 0.995):
            for seed in seeds:
                for loss in ("ce", "ifw"):
                    add(p, loss, ratio, seed)
    for loss in ("ce", "ifw", "cb"):  # P1 (40 min a run): seed 2 beside the paper-schedule seeds 0-1
        add("P1", loss, 0.99, 2)
    return out


def ten_seed_lines(seeds=TEN_SEEDS[len(SEEDS):]) -> list[str]:
    """The calibration's baseline cells (CE and IFW at r = 0.9, 0.99, 0.995; CB at r = 0.99) on P4, P3 and P2 with
    seeds 3-9, so that each of those cells has the paper's 10 splits (P1, 40 min a run, keeps its 3)."""
    out = []
    for p in ("P4", "P3", "P2"):  # the cheapest first (P4 about 1 min a run, P2 2-3, P3 5)
        for seed in seeds:
            for loss, ratio in BASELINE_CELLS:
                out.append(f"{PROTOCOLS[p]} loss={loss} dataset.majority_ratio={ratio} seed={seed} {COMMON} "
                           "trainer.channels_last=true")
    return out


# Ren et al. train their own method (L2RW) for 4000 steps, lr halved after half of them (trainer/mnist_ren.yaml's note)
L2RW_P3 = "trainer.length=4000 trainer.milestones=[2001] "


def short_lines(seeds=SEEDS) -> list[str]:
    """The short profile's check (docs/protocol.md): CE, IFW, CB and CDB-CE (normalize=mean) at r = 0.99 on P3s,
    to compare with the same runs on P3."""
    return [f"{PROTOCOLS['P3s']} loss={loss} dataset.majority_ratio=0.99 seed={seed} {extra}{COMMON} "
            "trainer.channels_last=true"
            for seed in seeds for loss, extra in (("ce", ""), ("ifw", ""), ("cb", ""), ("cdb", "loss.normalize=mean "))]


# part 3 runs the claim on the best-fitting protocol, "two if they tie": P3, and P2, which ties it at 4 of the 7
# baseline cells (results/protocol_calibration.md)
CLAIM_PROTOCOLS = ("P3", "P2")
TABLE1_LOSSES = ("ce", "ifw", "focal", "cb", "eql", "l2rw", "cdb")
TAUS = ("0.5", "1", "1.5", "2", "5", "7")


def table_lines(protocol: str = "P3", seeds=SEEDS) -> list[str]:
    """Tables 1 and 2 on `protocol` (7 losses, 6 fixed taus + dynamic, 5 ratios), r = 0.99 and 0.995 first. Every
    run of both tables is listed, the calibration's and the claim's included (they are the same runs): the tables
    are built from run records (results/runs/, studies/mnist_protocol/archive_runs.py), and runs that only the calibration CSV
    holds must be trained again for them (`--skip-archived` leaves out the ones archived)."""
    spec = PROTOCOLS[protocol]
    out = []
    for ratio in (0.99, 0.995, 0.9, 0.98, 0.95):
        for seed in seeds:
            todo = [(loss, L2RW_P3 if loss == "l2rw" and protocol == "P3" else
                     "loss.normalize=mean " if loss == "cdb" else "") for loss in TABLE1_LOSSES]
            todo += [("cdb", f"loss.tau={tau} loss.normalize=mean ") for tau in TAUS]
            for loss, extra in todo:
                out.append(f"{spec} loss={loss} dataset.majority_ratio={ratio} seed={seed} {extra}{COMMON} "
                           "trainer.channels_last=true")
    return out


def headline_lines(protocol: str = "P3", seeds=TEN_SEEDS[len(SEEDS):]) -> list[str]:
    """The headline column at the paper's 10 splits: Table 1 at r = 0.99 for the rows the calibration does not
    already hold at seeds 3-9 (Focal, EQL, L2RW, CDB-CE), then Table 2's fixed taus at r = 0.99."""
    t1 = [x for x in table_lines(protocol, seeds) if "majority_ratio=0.99 " in x and "loss.tau=" not in x]
    t1 = [x for x in t1 if key(x)[1] not in ("CE", "IFW", "CB")]
    t2 = [x for x in table_lines(protocol, seeds) if "majority_ratio=0.99 " in x and "loss.tau=" in x]
    return t1 + t2


def claim_lines(protocol: str = "P3", seeds=SEEDS) -> list[str]:
    """Part 3 of the calibration (docs/protocol.md): the paper's claim on the protocol that fits. At r = 0.99 first
    L2RW and EQL, then Table 2's fixed-tau column (dynamic tau is CDB-CE's calibration run), then CDB-CE (both
    normalisations), L2RW and EQL at r = 0.9 and 0.995."""
    spec = PROTOCOLS[protocol]
    out = []

    def add(loss, ratio, seed, extra=""):
        out.append(f"{spec} loss={loss} dataset.majority_ratio={ratio} seed={seed} {extra}{COMMON} "
                   "trainer.channels_last=true")

    others = [("l2rw", L2RW_P3 if protocol == "P3" else ""), ("eql", "")]
    for seed in seeds:
        for loss, extra in others:
            add(loss, 0.99, seed, extra)
    for seed in seeds:
        for tau in ("0.5", "1", "1.5", "2", "5", "7"):
            add("cdb", 0.99, seed, f"loss.tau={tau} loss.normalize=mean ")
    for ratio in (0.9, 0.995):
        for seed in seeds:
            for norm in ("mean", "none"):
                add("cdb", ratio, seed, f"loss.normalize={norm} ")
            for loss, extra in others:
                add(loss, ratio, seed, extra)
    return out


LABELS = {"ce": "CE", "ifw": "IFW", "cb": "CB", "ifw_ren": "IFW (Ren et al.'s ratio)", "l2rw": "L2RW", "eql": "EQL",
          "focal": "Focal"}


def _key(name: str, loss: str, tau, normalize, ratio, seed) -> tuple[str, str, float, int]:
    """(protocol, method label, ratio, seed) of the run `name=NAME loss=LOSS ...`, as studies/mnist_protocol/protocol_calibration.py
    labels its rows (one definition for a command line and for an archived config)."""
    protocol = next(p for p, spec in PROTOCOLS.items() if spec.split()[0] == f"name={name}")
    label = LABELS.get(loss, "")
    if loss == "cdb":
        label = f"CDB-CE (normalize={normalize})" if str(tau) == "dynamic" else f"CDB-CE (tau={float(tau):g})"
    return protocol, label, round(float(ratio), 4), int(seed)


def key(line: str) -> tuple[str, str, float, int]:
    """The key of one command line."""
    kv = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
    return _key(kv["name"], kv["loss"], kv.get("loss.tau", "dynamic"), kv.get("loss.normalize"),
                kv.get("dataset.majority_ratio", 0.99), kv["seed"])


def done(csv_path: str) -> set[tuple[str, str, float, int]]:
    import csv
    with open(csv_path, newline="") as f:
        return {(r["protocol"], r["method"], round(float(r["ratio"]), 4), int(r["seed"])) for r in csv.DictReader(f)}


def archived(root: str) -> set[tuple[str, str, float, int]]:
    """The keys of the finished runs recorded under `root` (results/runs: one folder per run name)."""
    import yaml
    from pathlib import Path
    names = {spec.split()[0][len("name="):] for spec in PROTOCOLS.values()}
    out = set()
    for cfg_path in Path(root).rglob("config.yaml"):
        if not (cfg_path.parent / "metrics.json").exists():
            continue
        cfg = yaml.safe_load(cfg_path.read_text())
        if cfg.get("name") in names:
            loss = cfg["loss"]
            out.add(_key(cfg["name"], loss["name"], loss.get("tau"), loss.get("normalize"),
                         cfg["dataset"]["majority_ratio"], cfg["seed"]))
    return out


def campaign(csv_path: str, archive_root: str, seeds=SEEDS) -> list[str]:
    """The whole queue of studies/mnist_protocol/protocol_campaign.sh, most informative first, each run once: P3's calibration,
    the short-profile check, the other protocols' calibration, the claim on P3, Tables 1-2 on P3 at r = 0.99 and
    0.995, the baseline cells' seeds 3-9 (ten_seed_lines), the claim on the other protocols of CLAIM_PROTOCOLS,
    P1's seed 2 (40 min a run), and the rest of Tables 1-2. A run is left out when its record is archived
    (results/runs), or when the calibration CSV holds it and no table needs its run directory. Each line is in the
    keys of the frozen code that trains it (FROZEN)."""
    have, rec = done(csv_path), archived(archive_root)
    tables = table_lines("P3", seeds)
    needed = {key(x) for x in tables}
    calib = lines(seeds)
    queue = [x for x in calib if "name=calib_p3 " in x] + short_lines(seeds)
    queue += [x for x in calib if "name=calib_p3 " not in x and "name=paper_schedule" not in x]
    first = [x for x in tables if any(f"majority_ratio={r} " in x for r in (0.99, 0.995))]
    queue += claim_lines(CLAIM_PROTOCOLS[0], seeds) + first + ten_seed_lines()
    queue += [x for p in CLAIM_PROTOCOLS[1:] for x in claim_lines(p, seeds)]
    # P1's seed 2 is part of the calibration the tables' other ratios are not: it goes first, 40 min a run or not
    queue += [x for x in calib if "name=paper_schedule" in x]
    # Table 1's headline column at 10 seeds before the 3-seed columns r = 0.98 and 0.95; Table 2's r = 0.99 taus last
    headline = headline_lines(CLAIM_PROTOCOLS[0])
    queue += [x for x in headline if "loss.tau=" not in x] + [x for x in tables if x not in first]
    queue += [x for x in headline if "loss.tau=" in x]
    seen, out = set(), []
    for line in queue:
        k = key(line)
        if k in seen or k in rec or (k in have and k not in needed):
            continue
        seen.add(k)
        out.append(frozen(line))
    return out


def frozen(line: str) -> str:
    """A command line of this code in the keys of the campaign's frozen code (FROZEN)."""
    protocol = key(line)[0]
    return FROZEN[protocol] + line[len(PROTOCOLS[protocol]):]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds 0..N-1 (default 3)")
    ap.add_argument("--part", choices=("calibration", "ten", "claim", "short", "tables", "all", "campaign"),
                    default="calibration",
                    help="calibration: P1-P4 baselines and CDB-CE at r = 0.99; ten: the baseline cells' seeds "
                         "3-9 on P2-P4; claim: the paper's claim on CLAIM_PROTOCOLS (P3, P2); "
                         "short: the short profile's check; tables: every run of Tables 1-2 on P3; campaign: the "
                         "whole queue of studies/mnist_protocol/protocol_campaign.sh (needs --skip and --skip-archived)")
    ap.add_argument("--skip", metavar="CSV", help="leave out the runs this calibration table already holds")
    ap.add_argument("--skip-archived", metavar="DIR", help="leave out the runs recorded under DIR (results/runs)")
    args = ap.parse_args()
    seeds = tuple(range(args.seeds))
    if args.part == "campaign":
        if not (args.skip and args.skip_archived):
            ap.error("--part campaign needs --skip CSV and --skip-archived DIR")
        print("\n".join(campaign(args.skip, args.skip_archived, seeds)))
        sys.exit(0)
    parts = {"calibration": lines, "ten": lambda s: ten_seed_lines(),
             "claim": lambda s: [x for p in CLAIM_PROTOCOLS for x in claim_lines(p, s)], "short": short_lines,
             "tables": lambda s: table_lines("P3", s)}
    todo = [x for name, make in parts.items() if args.part in (name, "all") for x in make(seeds)]
    if args.skip:
        have = done(args.skip)
        todo = [line for line in todo if key(line) not in have]
    if args.skip_archived:
        rec = archived(args.skip_archived)
        todo = [line for line in todo if key(line) not in rec]
    print("\n".join(dict.fromkeys(todo)))
