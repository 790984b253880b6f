"""studies/mnist_protocol/protocol_runs.py and studies/mnist_protocol/protocol_calibration.py: the campaign's run list, continuing it from a
committed table, and the table's cells checked by hand against the paper's Table 1."""
import sys
from itertools import dropwhile, takewhile

import pandas as pd
import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "studies" / "mnist_protocol"))
import protocol_calibration  # noqa: E402
import protocol_runs  # noqa: E402


def test_run_list_size_and_keys_are_unique():
    lines = protocol_runs.lines()
    # P2-P4: 4 baselines x 3 seeds at r=0.99 (36), CDB-CE x 2 normalisations x 3 seeds (18),
    # CE/IFW x 2 other ratios x 3 seeds (36); P1: CE/IFW/CB seed 2 (3)
    assert len(lines) == 36 + 18 + 36 + 3
    keys = [protocol_runs.key(line) for line in lines]
    assert len(set(keys)) == len(lines)
    assert ("P3", "CDB-CE (normalize=none)", 0.99, 2) in keys
    assert ("P1", "CB", 0.99, 2) in keys  # P1 lines carry no ratio: the default 0.99


def test_skip_leaves_out_what_a_table_holds(tmp_path):
    csv = tmp_path / "t.csv"
    pd.DataFrame([{"protocol": "P3", "method": "CE", "ratio": 0.99, "seed": 0, "error": 9.0},
                  {"protocol": "P2", "method": "IFW (Ren et al.'s ratio)", "ratio": 0.99, "seed": 1, "error": 4.0}]
                 ).to_csv(csv, index=False)
    have = protocol_runs.done(str(csv))
    left = [line for line in protocol_runs.lines() if protocol_runs.key(line) not in have]
    assert len(left) == len(protocol_runs.lines()) - 2
    assert not any("calib_p3" in x and "loss=ce " in x and "majority_ratio=0.99 " in x and "seed=0 " in x
                   for x in left)


def _row(protocol, method, seed, error, source="x"):
    return {"protocol": protocol, "method": method, "ratio": 0.99, "seed": seed, "error": error,
            "collapsed": False, "diverged": False, "source": source}


def test_kept_rows_stay_unless_a_run_directory_replaces_them(tmp_path):
    kept = tmp_path / "kept.csv"
    pd.DataFrame([_row("P3", "CE", 0, 9.0, "old"), _row("P3", "CE", 1, 11.0, "old")]).to_csv(kept, index=False)
    runs = pd.DataFrame([_row("P3", "CE", 1, 10.0, "new"), _row("P3", "CE", 2, 8.0, "new")])
    both = protocol_calibration.with_kept(runs, kept)
    assert sorted(zip(both["seed"], both["error"], both["source"])) == [(0, 9.0, "old"), (1, 10.0, "new"),
                                                                         (2, 8.0, "new")]
    assert protocol_calibration.with_kept(runs, None).equals(runs)


def test_cells_by_hand():
    # paper CE at r=0.99: 8.59 ± 0.41 -> within when |mean - 8.59| <= 0.82
    runs = pd.DataFrame([_row("P3", "CE", 0, 8.0), _row("P3", "CE", 1, 10.0),
                         _row("P2", "CE", 0, 9.3), _row("P2", "CE", 1, 9.5)])
    c = protocol_calibration.cells(runs).set_index("protocol")
    assert c.loc["P3", "mean"] == pytest.approx(9.0) and c.loc["P3", "std"] == pytest.approx(1.0)
    assert bool(c.loc["P3", "within_2sd"]) is True  # 9.0 - 8.59 = 0.41
    assert c.loc["P2", "mean"] == pytest.approx(9.4) and bool(c.loc["P2", "within_2sd"]) is True  # 0.81
    runs.loc[3, "error"] = 9.6  # mean 9.45: 0.86 > 0.82
    assert bool(protocol_calibration.cells(runs).set_index("protocol").loc["P2", "within_2sd"]) is False


def test_agreement_counts_the_calibration_cells_only():
    # CE at r = 0.99 is a calibration cell (within: 8.8 vs 8.59 ± 0.41); CB at 0.995 (a table run) is not counted
    runs = pd.DataFrame([_row("P3", "CE", 0, 8.8), {**_row("P3", "CB", 0, 20.0), "ratio": 0.995}])
    md = protocol_calibration.markdown(protocol_calibration.cells(runs), runs, "cmd")
    p3 = next(x for x in md.split("## Cells")[0].splitlines() if x.startswith("| P3 "))
    # cells, within, largest miss ((8.8 - 8.59) / 0.41 paper sd), runs
    assert [x.strip() for x in p3.split("|")[2:6]] == ["1", "1", "0.5", "1"]
    assert "| CB " in md.split("## Cells")[1]  # still listed among the cells


def test_figure_has_a_panel_per_calibration_cell_with_runs(tmp_path):
    # CE and IFW at r = 0.99 and CE at 0.9 have runs; CB at 0.995 is not a calibration cell; L2RW is no calibrator
    runs = pd.DataFrame([_row("P3", "CE", 0, 8.8), _row("P2", "CE", 0, 10.0), _row("P3", "IFW", 0, 4.0),
                         {**_row("P3", "CE", 0, 1.2), "ratio": 0.9}, {**_row("P3", "CB", 0, 6.0), "ratio": 0.995},
                         _row("P3", "L2RW", 0, 2.2), {**_row("P4", "IFW", 1, float("nan")), "diverged": True}])
    path = tmp_path / "calibration.png"
    panels = protocol_calibration.figure(runs, path, "cmd")
    assert panels == [("CE", 0.9), ("CE", 0.99), ("IFW", 0.99)]  # CE before IFW before CB, ratios ascending
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert protocol_calibration.figure(runs[runs["method"] == "L2RW"], tmp_path / "none.png", "cmd") == []
    assert not (tmp_path / "none.png").exists()


def test_claim_lines_and_labels():
    claim = protocol_runs.claim_lines("P3")
    # at r=0.99: L2RW, EQL x 3 seeds (6) and 6 fixed taus x 3 seeds (18); at r=0.9, 0.995: 2 CDB-CE + L2RW + EQL
    assert len(claim) == 6 + 18 + 2 * 3 * 4
    keys = [protocol_runs.key(line) for line in claim]
    assert len(set(keys)) == len(claim) and not set(keys) & {protocol_runs.key(x) for x in protocol_runs.lines()}
    assert ("P3", "CDB-CE (tau=1.5)", 0.99, 2) in keys and ("P3", "L2RW", 0.995, 0) in keys
    l2rw = next(x for x in claim if "loss=l2rw" in x)
    assert "trainer.length=4000 trainer.milestones=[2001]" in l2rw  # Ren et al.'s own-method schedule
    # the report labels a run's config as the run list keys it, and finds the paper's value
    assert protocol_calibration.method({"loss": {"name": "cdb", "label": "CDB-CE", "tau": 1.5}}) == "CDB-CE (tau=1.5)"
    assert protocol_calibration.method({"loss": {"name": "cdb", "label": "CDB-CE", "tau": 1}}) == "CDB-CE (tau=1)"
    assert protocol_calibration.paper_cell("CDB-CE (tau=1.5)", 0.99) == (2.31, 0.38)  # Table 2
    assert protocol_calibration.paper_cell("L2RW", 0.995) == (3.94, 1.23)  # Table 1
    # every row of Table 1, Focal included, and Ren et al.'s ratio compared with IFW's row
    assert protocol_calibration.paper_cell("Focal", 0.995) == (17.17, 0.86)
    assert protocol_calibration.paper_cell("IFW (Ren et al.'s ratio)", 0.99) == (6.01, 0.56)
    assert protocol_calibration.paper_cell("CDB-CE (normalize=none)", 0.9) == (0.74, 0.14)


def test_claim_compares_means_and_seeds_by_hand():
    runs = pd.DataFrame([_row("P3", "CDB-CE (normalize=mean)", 0, 3.0), _row("P3", "CDB-CE (normalize=mean)", 1, 5.0),
                         _row("P3", "IFW", 0, 4.0), _row("P3", "IFW", 1, 4.5), _row("P3", "IFW", 2, 4.6),
                         _row("P2", "CB", 0, 1.0)])
    v = protocol_calibration.claim(runs)
    assert len(v) == 1  # no CB or L2RW on P3
    row = v.iloc[0]
    # over the seeds both have (0 and 1): IFW's seed 2 is another split
    assert row["CDB-CE error"] == pytest.approx(4.0) and row["rival error"] == pytest.approx(4.25)
    assert bool(row["CDB-CE lower"]) is True and row["seeds CDB-CE lower"] == "1 of 2"


def _cells(protocol, within):
    """Calibration cells of `protocol` with the first `within` of them at the paper's mean, the rest far off."""
    cells = sorted(protocol_calibration.CALIBRATION_CELLS)
    rows = []
    for i, (m, r) in enumerate(cells):
        mean, std = protocol_calibration.paper_cell(m, r)
        rows.append({**_row(protocol, m, 0, mean if i < within else mean + 3 * std + 1), "ratio": r})
    return rows


def test_best_fits_count_every_cell_and_keep_ties():
    # P2 and P3 tie at 4 of 7, P4 3 of 7; P1 has one cell (r = 0.99 only), within: not compared on the same cells
    runs = pd.DataFrame(_cells("P2", 4) + _cells("P3", 4) + _cells("P4", 3) + [_row("P1", "CE", 0, 8.59)])
    summary = protocol_calibration.agreement(protocol_calibration.cells(runs)).set_index("protocol")
    assert summary.loc["P3", "within 2 sd"] == 4 and summary.loc["P4", "within 2 sd"] == 3
    # _cells puts a missed cell at 3 sd + 1 point from the paper's mean: the largest miss is the missed cell of the
    # smallest sd
    missed = sorted(protocol_calibration.CALIBRATION_CELLS)[4:]
    smallest_sd = min(protocol_calibration.paper_cell(m, r)[1] for m, r in missed)
    assert summary.loc["P3", "largest miss (paper sd)"] == pytest.approx(3 + 1 / smallest_sd, abs=0.05)
    assert (summary.loc["P1", "baseline cells"], summary.loc["P1", "within 2 sd"]) == (1, 1)
    assert protocol_calibration.best_fits(summary.reset_index()) == ["P2", "P3"]  # a tie: the same largest miss
    # P2 misses its last cell by 10 points more: it keeps the tie on the count and goes second
    p2 = _cells("P2", 4)
    far = pd.DataFrame(p2[:-1] + [{**p2[-1], "error": p2[-1]["error"] + 10}] + _cells("P3", 4))
    fits = protocol_calibration.best_fits
    assert fits(protocol_calibration.agreement(protocol_calibration.cells(far))) == ["P3", "P2"]
    runs = pd.DataFrame(_cells("P2", 3) + _cells("P3", 4))
    assert fits(protocol_calibration.agreement(protocol_calibration.cells(runs))) == ["P3"]
    md = protocol_calibration.markdown(protocol_calibration.cells(runs), runs, "cmd")
    miss = round(3 + 1 / smallest_sd, 1)
    assert f"Best fit: P3 (4 of 7 cells within two sd; largest miss {miss:g} of the paper's sd)." in md


def test_claim_has_a_section_per_claim_protocol():
    # the claim's runs at r = 0.98, no calibration cell, so that the counts are _cells' own
    runs = pd.DataFrame([{**_row(p, m, 0, e), "ratio": 0.98} for p in ("P2", "P3", "P4")
                         for m, e in (("CDB-CE (normalize=mean)", 3.0), ("IFW", 4.0))] + _cells("P2", 4))
    md = protocol_calibration.markdown(protocol_calibration.cells(runs), runs, "cmd")
    heads = [x for x in md.splitlines() if x.startswith("## The paper's claim")]
    # P3 and P2 (protocol_runs.CLAIM_PROTOCOLS), in that order, each with its calibration count; not P4
    assert heads == ["## The paper's claim on P3 (0 of 7 baseline cells within): does CDB-CE beat IFW, CB and L2RW?",
                     "## The paper's claim on P2 (4 of 7 baseline cells within): does CDB-CE beat IFW, CB and L2RW?"]


def test_claim_table_writes_each_ratio_as_given():
    runs = pd.DataFrame([{**_row("P3", m, 0, e), "ratio": r} for r in (0.99, 0.995)
                         for m, e in (("CDB-CE (normalize=mean)", 3.0), ("IFW", 4.0))])
    rows = [x for x in protocol_calibration.markdown(protocol_calibration.cells(runs), runs, "cmd").splitlines()
            if "| IFW " in x and "normalize=mean" in x]
    assert [x.split("|")[1].strip() for x in rows] == ["0.99", "0.995"]


def test_short_check_by_hand():
    rows = [_row("P3", "CE", 0, 9.0), _row("P3", "CE", 1, 10.0), _row("P3", "IFW", 0, 4.0), _row("P3", "IFW", 1, 5.0),
            _row("P3s", "CE", 0, 9.8), _row("P3s", "IFW", 0, 5.5)]
    v = protocol_calibration.short_check(pd.DataFrame(rows)).set_index("method")
    assert bool(v.loc["CE", "within range"]) is True and bool(v.loc["IFW", "within range"]) is False  # 5.5 > 5.0
    assert v.loc["CE", "P3 seed range"] == "9.00 .. 10.00 (2)"
    assert (v.loc["IFW", "rank P3"], v.loc["CE", "rank P3"]) == (1, 2) and v.loc["CE", "rank P3s"] == 2
    assert len(protocol_runs.short_lines()) == 12
    assert all(protocol_runs.key(x)[0] == "P3s" for x in protocol_runs.short_lines())


def _record(root, name, overrides, cfg):
    """A finished run's record as studies/mnist_protocol/archive_runs.py writes it: config.yaml and metrics.json."""
    import json
    import yaml
    d = root / name / overrides / f"seed={cfg['seed']}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"name": name, **cfg}))
    (d / "metrics.json").write_text(json.dumps({"status": "complete"}))
    return d


def test_table_lines_list_every_run_of_both_tables():
    # Tables 1-2 on P3: 7 losses x 5 ratios x 3 seeds (105) + 6 fixed taus x 5 ratios x 3 seeds (90) = 195 runs, the
    # calibration's and the claim's included: the tables are built from run records, not from the calibration CSV
    table = protocol_runs.table_lines("P3")
    keys = [protocol_runs.key(x) for x in table]
    assert len(table) == 195 and len(set(keys)) == 195
    assert ("P3", "Focal", 0.99, 0) in keys and ("P3", "CE", 0.99, 0) in keys and ("P3", "CDB-CE (tau=7)", 0.95, 1) in keys
    assert ("P3", "CDB-CE (normalize=mean)", 0.9, 2) in keys
    assert table[0].split("majority_ratio=")[1].startswith("0.99 ")  # r = 0.99 first
    l2rw = [x for x in table if "loss=l2rw" in x]
    assert len(l2rw) == 15 and all("trainer.length=4000 trainer.milestones=[2001]" in x for x in l2rw)


def test_campaign_queue_skips_the_csv_and_the_archive_and_lists_each_run_once(tmp_path):
    csv = tmp_path / "t.csv"
    # the calibration holds P3's CE seed 0 at r = 0.99 and EQL seed 1 (a claim run): neither is archived
    pd.DataFrame([{"protocol": "P3", "method": "CE", "ratio": 0.99, "seed": 0, "error": 9.0},
                  {"protocol": "P3", "method": "EQL", "ratio": 0.99, "seed": 1, "error": 7.0}]).to_csv(csv, index=False)
    runs = tmp_path / "runs"
    _record(runs, "calib_p3", "a", {"seed": 2, "loss": {"name": "cdb", "tau": 0.5, "normalize": "mean"},
                                    "dataset": {"majority_ratio": 0.99}})
    _record(runs, "calib_p3", "b", {"seed": 0, "loss": {"name": "focal", "tau": None}, "dataset": {"majority_ratio": 0.9}})
    _record(runs, "other", "c", {"seed": 0, "loss": {"name": "ce"}, "dataset": {"majority_ratio": 0.9}})  # not P3's
    assert protocol_runs.archived(str(runs)) == {("P3", "CDB-CE (tau=0.5)", 0.99, 2), ("P3", "Focal", 0.9, 0)}
    queue = protocol_runs.campaign(str(csv), str(runs))
    keys = [protocol_runs.key(x) for x in queue]
    assert len(keys) == len(set(keys))
    # the claim's tau run is archived: gone; the claim's EQL seed 1 is in the CSV only: trained once, for the tables
    assert ("P3", "CDB-CE (tau=0.5)", 0.99, 2) not in keys and ("P3", "Focal", 0.9, 0) not in keys
    assert keys.count(("P3", "EQL", 0.99, 1)) == 1 and ("P3", "CE", 0.99, 0) in keys
    everything = {protocol_runs.key(x) for x in protocol_runs.lines() + protocol_runs.short_lines() +
                  protocol_runs.claim_lines() + protocol_runs.claim_lines("P2") + protocol_runs.table_lines() +
                  protocol_runs.ten_seed_lines() + protocol_runs.headline_lines()}
    # what is left out: the 2 archived runs, and of the two CSV rows only the calibration-only one would be, but
    # both are table runs, so they stay
    assert set(keys) == everything - {("P3", "CDB-CE (tau=0.5)", 0.99, 2), ("P3", "Focal", 0.9, 0)}
    # the baseline cells' seeds 3-9 follow the tables' r = 0.99 and 0.995 columns, before the other ratios
    ten = {protocol_runs.key(x) for x in protocol_runs.ten_seed_lines()}
    assert ten <= set(keys)
    where = [i for i, k in enumerate(keys) if k in ten]
    focal = [(k[2], i) for i, k in enumerate(keys) if k[1] == "Focal" and k[3] < 3]  # a run of the tables only
    assert max(i for r, i in focal if r in (0.99, 0.995)) < min(where)
    assert max(where) < min(i for r, i in focal if r in (0.9, 0.95, 0.98))
    # the claim on P2 (it ties P3's calibration) follows the seeds 3-9, before the tables' other ratios
    p2_claim = [i for i, k in enumerate(keys) if k in {protocol_runs.key(x) for x in protocol_runs.claim_lines("P2")}]
    assert len(p2_claim) == 6 + 18 + 2 * 3 * 4
    assert max(where) < min(p2_claim) and max(p2_claim) < min(i for r, i in focal if r in (0.9, 0.95, 0.98))
    # P1's seed 2 (the calibration, 40 min a run) follows the claims and goes before the tables' other ratios
    p1 = [i for i, k in enumerate(keys) if k[0] == "P1"]
    assert len(p1) == 3 and max(p2_claim) < min(p1) and max(p1) < min(i for r, i in focal if r in (0.9, 0.95, 0.98))
    # Table 1's headline column (r = 0.99) at seeds 3-9 comes before the 3-seed columns; Table 2's taus after them
    assert [k[3] for k in keys if k[1] == "Focal" and k[2] == 0.99] == list(range(10))
    headline = [i for i, k in enumerate(keys) if k[2] == 0.99 and k[3] >= 3 and k[1] in ("Focal", "EQL", "L2RW")]
    taus = [i for i, k in enumerate(keys) if k[2] == 0.99 and k[3] >= 3 and "tau=" in k[1]]
    assert len(headline) == 21 and len(taus) == 42
    assert max(headline) < min(i for r, i in focal if r in (0.9, 0.95, 0.98)) and min(taus) == len(keys) - 42


def test_ten_seed_lines_give_each_baseline_cell_ten_seeds():
    ten = [protocol_runs.key(x) for x in protocol_runs.ten_seed_lines()]
    # P2-P4 x (CE, IFW at 3 ratios + CB at 0.99) x seeds 3-9
    assert len(ten) == len(set(ten)) == 3 * 7 * 7
    calib = {protocol_runs.key(x) for x in protocol_runs.lines()}
    for p in ("P2", "P3", "P4"):
        for method, ratio in (("CE", 0.9), ("IFW", 0.99), ("CB", 0.99), ("CE", 0.995)):
            seeds = sorted(k[3] for k in calib | set(ten) if k[:3] == (p, method, ratio))
            assert seeds == list(range(10)), (p, method, ratio)
    assert not any(k[0] == "P1" for k in ten)  # 40 min a run: P1 keeps its 3


def test_p1_and_p4_name_lenet5_s_recipe():
    # the MNIST default is P3: lines without a protocol would train Ren et al.'s network
    from helpers import compose
    for p in ("P1", "P4"):
        spec = [t for t in protocol_runs.PROTOCOLS[p].split() if not t.startswith("name=")]
        cfg = compose(spec)
        assert (cfg.model.name, cfg.dataset.normalize, cfg.trainer.weight_decay) == ("lenet5", "standard", 0.0005)
    assert compose(protocol_runs.PROTOCOLS["P1"].split()[1:]).trainer.unit == "epoch"


@pytest.mark.parametrize("protocol", sorted(protocol_runs.PROTOCOLS))
def test_the_frozen_campaign_lines_train_what_the_protocol_presets_compose(protocol):
    # the campaign's lines spell each protocol in the frozen code's keys (FROZEN); read through the record-name
    # mapping (cdb.rundir.names), they compose the config protocol=pN composes, with the same run name
    from omegaconf import OmegaConf

    from cdb.rundir.names import SETTINGS
    from helpers import compose

    def overrides(spec):
        out = []
        for token in spec.split():
            k, v = token.split("=", 1)
            out.append(f"{SETTINGS.get(k, k)}={v}")
        return out
    frozen, ours = overrides(protocol_runs.FROZEN[protocol]), protocol_runs.PROTOCOLS[protocol].split()
    assert frozen[0] == ours[0]                                            # name=<run name>
    assert "protocol=" not in protocol_runs.FROZEN[protocol]
    assert OmegaConf.to_container(compose(frozen), resolve=True) == OmegaConf.to_container(compose(ours), resolve=True)


def test_the_campaign_queue_is_in_the_frozen_code_s_keys(tmp_path):
    csv = tmp_path / "t.csv"
    pd.DataFrame(columns=["protocol", "method", "ratio", "seed", "error"]).to_csv(csv, index=False)
    queue = protocol_runs.campaign(str(csv), str(tmp_path))
    ours = protocol_runs.table_lines()[0]   # P3, Table 1, r = 0.99, seed 0
    theirs = ours.replace("protocol=p3", "model=lenet_ren trainer=mnist_ren dataset.input_scale=unit")
    assert protocol_runs.frozen(ours) == theirs and theirs in queue
    assert not any("protocol=" in x for x in queue)


def test_docs_short_profile_table_is_the_committed_check():
    # docs/protocol.md copies the short-profile check; it must be the table results/protocol_calibration.md holds
    def table_after(text, heading):  # the rows of the first table after the heading
        after = dropwhile(lambda line: not line.startswith(heading), text.splitlines())
        return list(takewhile(lambda line: line.startswith("|"),
                              dropwhile(lambda line: not line.startswith("|"), after)))
    results = table_after((REPO / "results" / "protocol_calibration.md").read_text(), "## The short profile")
    docs = table_after((REPO / "docs" / "protocol.md").read_text(), "### The short profile")
    assert len(results) >= 4 and docs == results
