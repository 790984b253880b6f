"""cdb-table compare counts each run once in its `trained on` line, whatever the number of columns or checkpoints
read, and `--select both` reads a run that has one checkpoint only (a decoupled run) at that one, saying so."""
import json

import yaml

from cdb.report.tables import make_table

CPU = {"from_unit": 0, "torch": "2.14.1", "cpu": "AMD EPYC", "cpu_capability": "AVX512", "threads": 1, "device": "cpu"}


def _run(root, setting, seed, error, checkpoints=("last", "best")):
    d = root / setting / f"seed={seed}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "loss": {"label": "CE"}, "dataset": {"name": "folder"}}))
    test = {"error": error, "macro_recall": 100 - error, "per_class_accuracy": [100 - error, 100 - error]}
    cks = {c: {"unit": 10, "test": test, "val": {"macro_recall": 90.0, "per_class_accuracy": [90.0, 90.0]}}
           for c in checkpoints}
    (d / "metrics.json").write_text(json.dumps({"status": "complete", "selected": "last", "checkpoints": cks,
                                                "test": test, "class_names": ["a", "b"], "trained_on": [CPU]}))


def trained_on(md: str) -> str:
    return next(line for line in md.splitlines() if line.startswith("- trained on"))


def test_five_runs_are_five_runs_in_the_trained_on_line(tmp_path):
    for seed, err in enumerate([10.0, 12.0, 14.0]):
        _run(tmp_path, "loss=ce", seed, err)
    for seed, err in enumerate([8.0, 9.0]):
        _run(tmp_path, "loss=cdb", seed, err)
    table = make_table("compare", tmp_path)
    assert len(table.spec.cols) >= 4  # test error, balanced accuracy, two classes, ...: 5 runs x 4+ cells
    assert trained_on(table.markdown()) == "- trained on: torch 2.14.1, CPU AMD EPYC (AVX512 kernels), 1 thread (5 runs)"
    both = make_table("compare", tmp_path, select="both")  # each run read twice, still 5 runs
    assert trained_on(both.markdown()).endswith("(5 runs)")


def test_select_both_reads_a_run_without_a_best_checkpoint_at_its_last(tmp_path):
    _run(tmp_path, "loss=ce", 0, 10.0)
    _run(tmp_path, "decoupled", 0, 20.0, checkpoints=("last",))  # what cdb-decouple writes: no best checkpoint
    table = make_table("compare", tmp_path, select="both")
    cells = table.cells.set_index(["row", "col"])
    rows = sorted(table.spec.rows)
    assert rows == ["decoupled,trainer.select=last", "loss=ce,trainer.select=best", "loss=ce,trainer.select=last"]
    assert cells.loc[("decoupled,trainer.select=last", "test error"), "mean"] == 20.0
    md = table.markdown()
    assert "--select both: 1 run(s) have one checkpoint only and are read at it: " in md
    assert f"{tmp_path / 'decoupled' / 'seed=0'} (last)" in md
