"""Re-sampling and the decoupled second stage as a user runs them (real `python -m cdb` processes, real MNIST): a tiny
run, then `cdb-decouple` with each method, each writing a run directory of its own that `cdb-table compare` lists
as a row (cRT, tau-norm (tau=...), LWS) and that fills no row of a paper table; the source run is never touched;
what is not a finished run, or has no linear classifier, is refused in one line. The dry run and run.log name the
sampler (expected batch shares computed by hand)."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from helpers import FAST, LENET5, REPO, cdb_run, confusion_error, faults
from helpers.forked import run_module

METHODS = ("crt", "tau_norm", "lws")


def cdb(tmp_path: Path, *args: str, data: Path) -> subprocess.CompletedProcess:
    """`python -m cdb ARGS`, as cdb_run does it (runs under tmp_path/out)."""
    env = {**os.environ, "CDB_OUTPUT_ROOT": str(tmp_path / "out"), "CDB_DATA_ROOT": str(data),
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    return run_module("cdb", list(args), env, REPO)


def snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): (p.read_bytes(), p.stat().st_mtime_ns) for p in d.rglob("*") if p.is_file()}


def one_line(r: subprocess.CompletedProcess, needle: str) -> str:
    return faults.one_line(r, needle, prog="cdb-decouple")


@pytest.fixture(scope="module")
def stage2(mnist_dir, tmp_path_factory):
    """A 6-step CE run on MNIST 4/9 (r = 0.99), then each method on it (crt and lws: 4 steps)."""
    base = tmp_path_factory.mktemp("decoupled")
    r = cdb_run(base, "loss=ce", *LENET5, *FAST, data=mnist_dir)   # LeNet-5: its layer names are read below
    assert r.returncode == 0, r.stderr
    (source,) = [p.parent for p in (base / "out").rglob("metrics.json")]
    before = snapshot(source)
    time.sleep(0.05)
    out = {}
    for method in METHODS:
        extra = [] if method == "tau_norm" else ["--length", "4"]
        r = cdb(base, "decouple", str(source), "--method", method, "--no-progress", "--threads", "1", *extra,
                data=mnist_dir)
        assert r.returncode == 0, r.stderr
        run_dir = Path(r.stdout.strip().splitlines()[-1].split(": ")[0])
        out[method] = run_dir
    return base, source, before, out


def test_each_method_writes_a_run_directory_beside_the_source(stage2):
    base, source, before, out = stage2
    assert snapshot(source) == before                                     # the source run is never modified
    for method, run_dir in out.items():
        assert run_dir == source.parent.parent / f"{source.parent.name},decouple={method}" / "seed=0"
        assert {"config.yaml", "data.json", "log.jsonl", "run.log", "metrics.json", "checkpoints/last.pt"} \
            <= set(snapshot(run_dir)), method
        m = json.loads((run_dir / "metrics.json").read_text())
        assert m["status"] == "complete" and m["decouple"]["method"] == method
        assert m["selected"] == "last" and m["test"] == m["checkpoints"]["last"]["test"]
        n, error, per_class = confusion_error(m["checkpoints"]["last"]["test_confusion"])
        assert n == 1600 and m["checkpoints"]["last"]["test"]["error"] == pytest.approx(error)
        assert m["checkpoints"]["last"]["test"]["per_class_accuracy"] == pytest.approx(per_class)
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert cfg["decouple"]["source"] == str(source) and cfg["decouple"]["source_label"] == "CE"
        assert cfg["loss"]["label"] == m["decouple"]["label"]
        log = (run_dir / "run.log").read_text()
        assert "decoupled stage 2:" in log and "[INFO] - settings:" in log
    crt = yaml.safe_load((out["crt"] / "config.yaml").read_text())["trainer"]
    assert (crt["sampler"], crt["length"], crt["schedule"]) == ("class_balanced", 4, "cosine")
    assert "sampler: class_balanced (p_j ∝ n_j^0, drawn with replacement): expected batch shares 4 0.500, " \
           "9 0.500" in (out["crt"] / "run.log").read_text()
    # the source's run.log names its (default) sampler: 50 fours and 4950 nines
    assert "sampler: instance (shuffled passes, p_j = n_j / N): expected batch shares 4 0.010, 9 0.990" \
        in (source / "run.log").read_text()


def _model(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_crt_keeps_the_features_and_lws_the_classifier(stage2):
    _, source, _, out = stage2
    src = _model(source / "checkpoints" / "last.pt")
    for method in METHODS:
        new = _model(out[method] / "checkpoints" / "last.pt")
        feats = {k: v for k, v in src.items() if not k.startswith("classifier.5.")}
        assert all(torch.equal(new[f"features.{k}"], v) for k, v in feats.items()), method   # bit-identical
    crt = _model(out["crt"] / "checkpoints" / "last.pt")
    assert not torch.equal(crt["head.weight"], src["classifier.5.weight"])                  # re-initialised
    lws = _model(out["lws"] / "checkpoints" / "last.pt")
    assert torch.equal(lws["head.linear.weight"], src["classifier.5.weight"])               # frozen
    assert torch.equal(lws["head.linear.bias"], src["classifier.5.bias"])
    assert not torch.equal(lws["head.scales"], torch.ones(2))                                # trained


def test_tau_is_chosen_on_the_validation_split(stage2):
    _, source, _, out = stage2
    m = json.loads((out["tau_norm"] / "metrics.json").read_text())
    d = m["decouple"]
    assert d["taus"] == pytest.approx([i / 10 for i in range(21)])
    accs = d["val_balanced_accuracy_by_tau"]
    best = max(range(21), key=lambda i: (accs[i], -i))
    assert d["tau"] == pytest.approx(d["taus"][best]) and d["label"] == f"tau-norm (tau={d['tau']:g})"
    # the accuracy it was chosen by is the validation split's (both classes have images: balanced = macro recall)
    assert accs[best] == pytest.approx(m["checkpoints"]["last"]["val"]["macro_recall"])
    rows = [json.loads(line) for line in (out["tau_norm"] / "log.jsonl").read_text().splitlines()]
    assert [r["tau_norm"] for r in rows] == pytest.approx(d["taus"])
    new, src = _model(out["tau_norm"] / "checkpoints" / "last.pt"), _model(source / "checkpoints" / "last.pt")
    w = src["classifier.5.weight"]
    assert torch.allclose(new["head.weight"], w / w.norm(dim=1, keepdim=True) ** d["tau"])
    assert torch.equal(new["head.bias"], src["classifier.5.bias"])


def test_compare_lists_each_stage_as_a_row_and_paper_tables_ignore_them(stage2, tmp_path):
    base, source, _, out = stage2
    r = cdb(tmp_path, "table", "compare", "--runs", str(base / "out"), "--out", "-", "--format", "csv",
            data=tmp_path)
    assert r.returncode == 0, r.stderr
    cells = {(c["row"], c["col"]): c for c in csv.DictReader(io.StringIO(r.stdout))}
    tau = json.loads((out["tau_norm"] / "metrics.json").read_text())["decouple"]["tau"]
    assert {row for row, _ in cells} == {source.parent.name, "cRT", f"tau-norm (tau={tau:g})", "LWS"}
    for row, method in (("cRT", "crt"), ("LWS", "lws"), (f"tau-norm (tau={tau:g})", "tau_norm")):
        error = json.loads((out[method] / "metrics.json").read_text())["test"]["error"]
        assert (cells[(row, "test error")]["mean"], cells[(row, "test error")]["n"]) == (f"{error:.4f}", "1")
    # Table 1 takes the CE source only: the decoupled runs' labels (cRT, ...) are rows of no paper table
    r = cdb(tmp_path, "table", "table1", "--runs", str(base / "out"), "--out", "-", "--format", "csv",
            data=tmp_path)
    assert r.returncode == 0, r.stderr
    filled = [c for c in csv.DictReader(io.StringIO(r.stdout)) if c["n"] != "0"]
    assert [(c["row"], c["col"], c["n"]) for c in filled] == [("CE", "0.99", "1")]


def test_refusals_are_one_line(stage2, tmp_path):
    base, source, _, out = stage2
    data = tmp_path
    one_line(cdb(tmp_path, "decouple", str(source), "--method", "crt", data=data),
             f"{out['crt']} already holds a run")
    one_line(cdb(tmp_path, "decouple", str(out["crt"]), "--method", "lws", data=data),
             "is itself a decoupled run (cRT)")
    one_line(cdb(tmp_path, "decouple", str(source), "--method", "lws", "--out", str(source / "x"), data=data),
             "the source is never modified")
    one_line(cdb(tmp_path, "decouple", str(tmp_path / "nowhere"), "--method", "crt", data=data),
             "is not a run directory")
    running = tmp_path / "running"
    shutil.copytree(source, running)
    (running / "metrics.json").write_text(json.dumps({"status": "running"}))
    one_line(cdb(tmp_path, "decouple", str(running), "--method", "crt", data=data),
             f"{running} is not a finished run: its metrics.json has status 'running'")
    (running / "metrics.json").unlink()
    one_line(cdb(tmp_path, "decouple", str(running), "--method", "crt", data=data),
             f"{running} is not a finished run: it has no metrics.json")


def test_changed_data_and_foreign_checkpoints_are_refused_in_one_line(stage2, mnist_dir, tmp_path):
    from cdb.models.lenet import LeNet5

    _, source, _, _ = stage2
    moved = tmp_path / "moved" / "seed=0"
    shutil.copytree(source, moved)
    recorded = json.loads((moved / "data.json").read_text())
    (moved / "data.json").write_text(json.dumps({**recorded, "train_class_counts": [60, 4940]}))
    one_line(cdb(tmp_path, "decouple", str(moved), "--method", "lws", data=mnist_dir),
             "has changed since it trained: its data.json records training class counts [60, 4940], the files "
             "give [50, 4950]")
    (moved / "data.json").write_text(json.dumps(recorded))
    torch.save({"model": LeNet5(3).state_dict(), "unit": 6}, moved / "checkpoints" / "last.pt")   # 3 classes
    one_line(cdb(tmp_path, "decouple", str(moved), "--method", "lws", data=mnist_dir),
             f"checkpoint {moved / 'checkpoints' / 'last.pt'} does not fit the model of {moved / 'config.yaml'}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moved"]          # no half-made run directory


def test_a_model_without_a_linear_classifier_is_refused_in_one_line(stage2, mnist_dir, tmp_path):
    """A finished run whose model ends in the cosine head (loss.head=cosine, as LDAM's config asks for)."""
    from cdb.models import build_model

    _, source, _, _ = stage2
    cosine = tmp_path / "cosine" / "seed=0"
    shutil.copytree(source, cosine)
    cfg = yaml.safe_load((cosine / "config.yaml").read_text())
    cfg["loss"]["head"] = "cosine"
    (cosine / "config.yaml").write_text(yaml.safe_dump(cfg))
    model = build_model("lenet5", 2, (1, 28, 28), head="cosine")
    torch.save({"model": model.state_dict(), "unit": 6}, cosine / "checkpoints" / "last.pt")
    one_line(cdb(tmp_path, "decouple", str(cosine), "--method", "tau_norm", data=mnist_dir),
             "has no linear classifier to decouple: its last layer 'classifier.5' is a NormedLinear")
    assert not (tmp_path / "cosine,decouple=tau_norm").exists()           # nothing left behind


def test_the_dry_run_names_the_sampler(mnist_dir, tmp_path):
    # MNIST 4/9 at r = 0.99: 50 fours, 4950 nines; sqrt: sqrt(50) / (sqrt(50) + sqrt(4950)) = 1 / (1 + sqrt(99))
    # = 0.0913 (4) and 0.9087 (9)
    r = cdb_run(tmp_path, "trainer.sampler=sqrt", "dry_run=true", data=mnist_dir)
    assert r.returncode == 0, r.stderr
    assert "sampler: sqrt (p_j ∝ n_j^1/2, drawn with replacement): expected batch shares 4 0.091, 9 0.909" \
        in r.stdout
    r = cdb_run(tmp_path, "trainer.sampler=progressive", "trainer.length=5", "dry_run=true", data=mnist_dir)
    # unit 0: instance-balanced; the last unit (t = 4 of T = 5): 1/5 (0.01, 0.99) + 4/5 (0.5, 0.5) = (0.402, 0.598)
    assert "4 0.010, 9 0.990 at unit 0, 4 0.402, 9 0.598 at the last unit" in r.stdout, r.stdout
    assert not (tmp_path / "out").exists()
