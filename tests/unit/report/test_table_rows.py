"""Every shipped loss config fills the paper's row for its method in every table that lists the method.

The expectation is written out here from the paper's tables (row names as printed, quoted below) and the
configs' file names; it is not read from cdb.report.tables. A run directory is made from the config `cdb-run` composes
for that loss and dataset, so the label each config ships is the one the table sees. (A real Meta-Weight-Net run
filling its row: tests/cli/test_long_tail_runs.py.)
"""
from __future__ import annotations

import csv
import functools
import json

import pytest
from omegaconf import OmegaConf

from cdb.report.tables import build_table
from helpers import REPO, compose

# Paper rows per table and loss config (paper text):
# Table 1 "The compared loss functions include (1) Unweighted Cross-Entropy(CE) ... (2) inverse class-frequency
#   weighting (IFW) ... (3) Focal loss [14], ClassBalanced(CB) loss [15], Equalization loss (EQL) [16] and L2RW"
#   rows: CE, IFW, Focal, CB, EQL, L2RW, CDB-CE (dynamic tau)
# Table 3 "Focal loss † [14]", "Class-Balanced † [15]", "L2RW †", "Meta-Weight Net † [36]", "Equalization loss †",
#   "LDAM-DRW † [37]", CDB-CE ("For CDB-CE loss (Ours), we report the results with dynamically updated τ")
# Table 4 rows: tau of CDB-CE (0, 0.5, 1, 1.5, 2, 5, dynamic)
# Table 5 "Focal loss † [14]", "OLTR †", "Joint training †", "Equalization loss †", ..., CDB-CE
# Tables 6 and 7 "Focal loss [14]", "Class-Balanced loss [15]", CE, CDB-CE
EXPECTED = {
    "ce": {"table1": "CE", "table6": "CE", "table7": "CE"},
    "ifw": {"table1": "IFW"},
    "focal": {"table1": "Focal", "table3": "Focal †", "table5": "Focal †", "table6": "Focal", "table7": "Focal"},
    "cb": {"table1": "CB", "table3": "Class-Balanced †", "table6": "CB", "table7": "CB"},
    "eql": {"table1": "EQL", "table3": "Equalization loss †", "table5": "Equalization loss †"},
    "l2rw": {"table1": "L2RW", "table3": "L2RW †"},
    "mwn": {"table3": "Meta-Weight Net †"},
    "ldam_drw": {"table3": "LDAM-DRW †"},
    "cdb": {"table1": "CDB-CE", "table3": "CDB-CE", "table4": "dynamic", "table5": "CDB-CE", "table6": "CDB-CE",
            "table7": "CDB-CE"},
}
# Methods the paper's tables do not list as a row of their own: their runs fill no row (cdb_stabilised is CDB-CE with
# our stabilisers, not the paper's method; ifw_ren is Ren et al.'s ratio weighting, a protocol option of docs/protocol.md).
NOT_IN_PAPER = {"balanced_softmax", "logit_adjust", "cdb_focal", "cb_focal", "cdb_stabilised", "ifw_ren"}

DATASET = {  # overrides of a run in the column the check reads, and that column
    "table1": (["dataset.majority_ratio=0.99"], "0.99"),
    "table3": (["dataset=cifar_lt", "imbalance=100"], "100"),
    "table4": (["dataset=cifar_lt", "imbalance=100"], "100"),
    "table5": (["dataset=imagenet_lt"], "Top-1"),
    "table6": (["dataset=egtea"], "Acc@Top1"),
    "table7": (["dataset=egtea"], "Majority recall"),
}
TEST = {"n": 100, "accuracy": 41.5, "error": 58.5, "top5": 70.0, "macro_recall": 40.0, "macro_precision": 39.0,
        "many_accuracy": 50.0, "medium_accuracy": 40.0, "few_accuracy": 30.0, "majority_recall": 41.5,
        "majority_precision": 42.0, "minority_recall": 38.0, "minority_precision": 37.0}
LOSSES = sorted(p.stem for p in (REPO / "configs" / "loss").glob("*.yaml"))


def test_every_loss_config_is_placed():
    assert set(LOSSES) == set(EXPECTED) | NOT_IN_PAPER   # a new loss config must say which rows it fills


@functools.lru_cache(maxsize=None)
def config_yaml(*overrides: str) -> str:
    return OmegaConf.to_yaml(compose(overrides), resolve=True)


def write_run(root, overrides, test=TEST):
    """A finished run directory holding the config cdb-run composes for `overrides`."""
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(config_yaml(*overrides))
    (root / "metrics.json").write_text(json.dumps({"status": "complete", "test": test}))
    return root


def filled(table, runs, out):
    build_table(table, runs, out)
    with open(out / f"{table}.csv") as f:
        return {(r["row"], r["col"]): float(r["mean"]) for r in csv.DictReader(f) if r["n"] not in ("", "0")}


@pytest.mark.parametrize("table", sorted(DATASET))
@pytest.mark.parametrize("loss", LOSSES)
def test_loss_config_fills_its_paper_row(tmp_path, loss, table):
    overrides, col = DATASET[table]
    write_run(tmp_path / "runs" / loss, [f"loss={loss}", *overrides])
    cells = filled(table, tmp_path / "runs", tmp_path / "out")
    row = EXPECTED.get(loss, {}).get(table)
    if row is None:
        assert cells == {}, f"{loss} is not a {table} row but filled {cells}"
    else:
        assert (row, col) in cells, f"{loss} (label {compose([f'loss={loss}']).loss.label!r}) did not fill " \
                                    f"{table} row {row!r}: {cells}"
        assert {r for r, _ in cells} == {row}
