"""Tables 3-7 from run directories: which run fills which cell, † rows, and "no run" cells."""
from __future__ import annotations

import csv
import json

import yaml

from cdb.report.tables import SPECS, build_table
from helpers import REPO


def make_run(root, name, cfg, test, status="complete"):
    d = root / name
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    (d / "metrics.json").write_text(json.dumps({"status": status, "test": test}))
    return d


def cifar(label, tau, imbalance, weighting="cdb", classes=100):
    return {"seed": 0, "dataset": {"name": "cifar_lt", "imbalance": imbalance, "classes": classes},
            "loss": {"label": label, "weighting": weighting, "base": "ce", "tau": tau},
            "trainer": {"length": 200}}


def cells(csv_path):
    with open(csv_path) as f:
        return {(r["row"], r["col"]): r for r in csv.DictReader(f)}


def test_table3_and_table4(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "a", cifar("CDB-CE", "dynamic", 100), {"accuracy": 42.0})
    make_run(runs, "b", cifar("CDB-CE", "dynamic", 100) | {"seed": 1}, {"accuracy": 44.0})
    make_run(runs, "c", cifar("CDB-CE", 1.5, 100), {"accuracy": 40.0})
    make_run(runs, "d", cifar("CDB-CE", 0, 10), {"accuracy": 55.0})
    make_run(runs, "e", cifar("Focal", None, 200, weighting="none"), {"accuracy": 30.0})
    make_run(runs, "f", cifar("CE", None, 50, weighting="none"), {"accuracy": 33.0})
    make_run(runs, "g", cifar("CDB-CE", "dynamic", 100, classes=10), {"accuracy": 80.0})    # CIFAR-10: no
    make_run(runs, "h", cifar("CDB-CE", "dynamic", 20), {"accuracy": 1.0}, status="running")  # unfinished
    out = tmp_path / "results"
    md = build_table("table3", runs, out, command="cdb-run -m experiment=table3")[0].read_text()
    t3 = cells(out / "table3.csv")
    assert float(t3[("CDB-CE", "100")]["mean"]) == 43.0 and t3[("CDB-CE", "100")]["n"] == "2"
    assert float(t3[("CDB-CE", "100")]["std"]) == 1.0
    assert t3[("CDB-CE", "100")]["paper"] == "42.57"
    assert float(t3[("Focal †", "200")]["mean"]) == 30.0          # our own Focal run fills the † row
    assert t3[("Class-Balanced †", "200")]["n"] == "0"           # never filled by another method's runs
    assert t3[("CDB-CE", "20")]["n"] == "0"                      # unfinished runs do not count
    assert all(r["n"] == "0" for k, r in t3.items() if k[0] not in ("CDB-CE", "Focal †"))
    assert "no run · paper 37.40" in md and "† rows" in md and "cdb-run -m experiment=table3" in md
    build_table("table4", runs, out)
    t4 = cells(out / "table4.csv")
    assert float(t4[("dynamic", "100")]["mean"]) == 43.0
    assert float(t4[("1.5", "100")]["mean"]) == 40.0
    assert float(t4[("0", "10")]["mean"]) == 55.0 and t4[("0", "10")]["paper"] == "55.65"
    assert t4[("0", "50")]["n"] == "0"                           # plain CE (no CDB weighting) is not a tau row


def test_table5_columns(tmp_path):
    runs = tmp_path / "runs"
    cfg = {"seed": 0, "dataset": {"name": "imagenet_lt"}, "loss": {"label": "CDB-CE", "weighting": "cdb",
                                                                    "tau": "dynamic"}}
    make_run(runs, "a", cfg, {"accuracy": 38.0, "many_accuracy": 55.0, "medium_accuracy": 33.0,
                              "few_accuracy": 10.0})
    build_table("table5", runs, tmp_path / "out")
    t5 = cells(tmp_path / "out" / "table5.csv")
    assert [float(t5[("CDB-CE", c)]["mean"]) for c in ("Top-1", "Many", "Medium", "Few")] == [38, 55, 33, 10]
    assert t5[("CDB-CE", "Top-1")]["paper"] == "38.49" and t5[("CDB-CE", "Many")]["paper"] == ""
    assert t5[("OLTR + CDB-CE", "Top-1")]["n"] == "0"


def test_table6_and_table7_from_the_same_runs(tmp_path):
    runs = tmp_path / "runs"
    metrics = {"accuracy": 67.0, "top5": 95.0, "macro_recall": 64.0, "macro_precision": 61.0,
               "majority_recall": 74.0, "majority_precision": 75.0, "minority_recall": 61.0,
               "minority_precision": 56.0}
    base = {"seed": 0, "dataset": {"name": "egtea"}}
    make_run(runs, "ce", base | {"loss": {"label": "CE", "weighting": "none"}}, metrics)
    make_run(runs, "cdb", base | {"loss": {"label": "CDB-CE", "weighting": "cdb", "tau": "dynamic"}},
             {k: v + 1 for k, v in metrics.items()})
    make_run(runs, "cdb_tau2", base | {"loss": {"label": "CDB-CE", "weighting": "cdb", "tau": 2}}, metrics)
    build_table("table6", runs, tmp_path / "out")
    build_table("table7", runs, tmp_path / "out")
    t6, t7 = cells(tmp_path / "out" / "table6.csv"), cells(tmp_path / "out" / "table7.csv")
    assert [float(t6[("CE", c)]["mean"]) for c in SPECS["table6"].cols] == [67, 95, 64, 61]
    assert [float(t6[("CDB-CE", c)]["mean"]) for c in SPECS["table6"].cols] == [68, 96, 65, 62]
    assert t6[("CDB-CE", "Acc@Top1")]["n"] == "1"                  # the fixed-tau run is not Table 6's CDB-CE
    assert [float(t7[("CE", c)]["mean"]) for c in SPECS["table7"].cols] == [74, 75, 61, 56]
    assert t7[("Focal", "Majority recall")]["n"] == "0"


def test_shipped_mwn_label_fills_the_meta_weight_net_row(tmp_path):
    mwn = REPO / "configs" / "loss" / "mwn.yaml"
    label = yaml.safe_load(mwn.read_text())["label"]                      # "MW-Net"
    runs = tmp_path / "runs"
    make_run(runs, "mwn", cifar(label, None, 100, weighting="mwn"), {"accuracy": 41.0})
    build_table("table3", runs, tmp_path / "out")
    t3 = cells(tmp_path / "out" / "table3.csv")
    assert float(t3[("Meta-Weight Net †", "100")]["mean"]) == 41.0 and t3[("Meta-Weight Net †", "100")]["n"] == "1"
    assert sum(int(r["n"]) for r in t3.values()) == 1                     # and no other row
