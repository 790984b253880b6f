"""cdb-eval, as a user runs it: a tiny real MNIST run is trained with cdb-run, then evaluated.
Its numbers must equal the run's own metrics.json exactly (both checkpoints, val and test, the confusion matrix);
a folder written from the same test images gives the same numbers, a part of it a part of the counts; a folder of
other classes, a checkpoint of another model or class count, and a folder that is not a finished run are refused in
one line; metrics.json is never written."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cdb.models.lenet import LeNet5
from cdb.models.lenet_ren import LeNetRen
from helpers import LENET5, REPO, cdb_run, confusion_error, faults, run_dirs
from helpers.forked import run_module

# CE on MNIST 4/9 at r = 0.6: 30 steps at lr 0.05 leave both classes partly right, and the best-validation
# checkpoint (unit 20) is another model than the last (unit 30), so equal numbers are not an accident
TRAIN = [*LENET5, "loss=ce", "dataset.majority_ratio=0.6", "trainer.unit=step", "trainer.length=30", "trainer.eval_every=10",
         "trainer.lr=0.05", "trainer.milestones=[]", "trainer.progress=false", "threads=1"]


def cdb_eval(*args: str, cwd: Path, python_m: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    if python_m:
        return run_module("cdb", ["eval", *args], env, cwd)
    return subprocess.run([sys.executable, "-c", "from cdb.cli.evaluate import main; main()", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


def refused(r: subprocess.CompletedProcess, needle: str) -> str:
    return faults.one_line(r, needle, prog="cdb-eval")


@pytest.fixture(scope="module")
def trained(mnist_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("eval")
    r = cdb_run(base, *TRAIN, data=mnist_dir)
    assert r.returncode == 0, r.stderr
    (run,) = run_dirs(base / "out")
    metrics = json.loads((run / "metrics.json").read_text())
    last, best = metrics["checkpoints"]["last"], metrics["checkpoints"]["best"]
    assert (last["unit"], best["unit"]) == (30, 20) and last["test"] != best["test"]
    assert all(0 < a < 100 for a in last["test"]["per_class_accuracy"][1:]), last["test"]
    return base, run, metrics


def test_eval_gives_the_runs_own_metrics_exactly(trained):
    base, run, metrics = trained
    before = (run / "metrics.json").read_bytes()
    r = cdb_eval(str(run), cwd=base)                               # default: the checkpoint the run selected
    assert r.returncode == 0, r.stderr
    report = json.loads((run / "eval" / "last_test.json").read_text())
    assert report["checkpoint"] == metrics["selected"] == "last" and report["unit"] == 30
    assert report["test"] == metrics["test"]                       # every number, exactly (no tolerance)
    assert report["test"] == metrics["checkpoints"]["last"]["test"] and report["val"] == metrics["checkpoints"]["last"]["val"]
    assert report["test_confusion"] == metrics["checkpoints"]["last"]["test_confusion"]
    n, error, per_class = confusion_error(report["test_confusion"])   # the counts say the same, by hand
    assert (n, error, per_class) == (1600, pytest.approx(report["test"]["error"]),
                                     pytest.approx(report["test"]["per_class_accuracy"]))
    t = metrics["test"]
    assert r.stdout.strip() == (f"{run} [last checkpoint, unit 30] on test split (1600 images): error {t['error']:.2f}% "
                                f"(accuracy {t['accuracy']:.2f}%, balanced {t['macro_recall']:.2f}%; per class "
                                f"4 {t['per_class_accuracy'][0]:.1f}, 9 {t['per_class_accuracy'][1]:.1f})")
    assert r.stderr.strip() == f"cdb-eval: wrote {run / 'eval' / 'last_test.json'}"
    # the best-validation checkpoint, through python -m cdb eval
    r = cdb_eval(str(run), "--checkpoint", "best", cwd=base, python_m=True)
    assert r.returncode == 0, r.stderr
    report = json.loads((run / "eval" / "best_test.json").read_text())
    assert report["unit"] == 20 and report["command"].startswith("python -m cdb eval ")
    for key in ("val", "test", "test_confusion"):
        assert report[key] == metrics["checkpoints"]["best"][key]
    assert (run / "metrics.json").read_bytes() == before           # the run's own record is never written


def _test_images(run: Path):
    """The run's test split as its builder makes it (uint8 images and labels), to write as PNG files."""
    from omegaconf import OmegaConf

    from cdb.data import build_dataset

    cfg = OmegaConf.to_container(OmegaConf.load(run / "config.yaml"), resolve=True)
    ds = dict(cfg["dataset"])
    data = build_dataset(ds.pop("name"), seed=cfg["seed"], **ds)
    return data.test.x, data.test.y, data.class_names


def first(n: int):
    """A keep(i, class name) that takes the first n images of each class."""
    seen: dict[str, int] = {}

    def keep(i, name):
        seen[name] = seen.get(name, 0) + 1
        return seen[name] <= n

    return keep


def _write_folder(root: Path, x, y, names, keep=None) -> Path:
    from PIL import Image

    for i in range(len(y)):
        name = names[int(y[i])]
        if keep is not None and keep(i, name) is False:
            continue
        (root / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i, 0].numpy(), mode="L").save(root / name / f"{i:05d}.png")
    return root


def test_a_folder_of_the_same_test_images_gives_the_same_numbers(trained, tmp_path):
    base, run, metrics = trained
    x, y, names = _test_images(run)
    same = _write_folder(tmp_path / "same", x, y, names)
    r = cdb_eval(str(run), "--data", str(same), cwd=base)
    assert r.returncode == 0, r.stderr
    report = json.loads((run / "eval" / "last_data_same.json").read_text())
    assert report["data"] == str(same) and "val" not in report
    assert report["test"] == metrics["test"] and report["test_confusion"] == metrics["checkpoints"]["last"]["test_confusion"]
    # the first 30 images of each class: their own counts, every cell at most the whole split's
    part = _write_folder(tmp_path / "part", x, y, names, keep=first(30))
    r = cdb_eval(str(run), "--data", str(part), "--name", "part30", cwd=base)
    assert r.returncode == 0, r.stderr
    cm = json.loads((run / "eval" / "part30.json").read_text())["test_confusion"]
    full = metrics["checkpoints"]["last"]["test_confusion"]
    assert [sum(row) for row in cm] == [30, 30]
    assert all(cm[a][b] <= full[a][b] for a in range(2) for b in range(2))


def test_a_folder_of_other_classes_is_refused(trained, tmp_path):
    base, run, _ = trained
    x, y, names = _test_images(run)
    other = _write_folder(tmp_path / "other", x, y, names, keep=first(5))
    (other / names[0]).rename(other / "7")                         # classes 7 and 9: not the run's 4 and 9
    refused(cdb_eval(str(run), "--data", str(other), cwd=base),
            f"--data {other} does not have the run's classes: it has ['7'], which the run was not trained on")
    shutil.rmtree(other / "7")
    refused(cdb_eval(str(run), "--data", str(other), cwd=base), "does not have the run's classes: it lacks ['4']")
    assert not (run / "eval" / "last_data_other.json").exists()


def test_a_checkpoint_of_another_model_or_class_count_is_refused(trained, tmp_path):
    base, run, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("eval"))   # what earlier tests wrote there
    torch.save({"model": LeNet5(10).state_dict(), "unit": 20}, copy / "checkpoints" / "best.pt")
    refused(cdb_eval(str(copy), "--checkpoint", "best", cwd=base),
            f"checkpoint {copy / 'checkpoints' / 'best.pt'} is not a checkpoint of this run's model (lenet5, 2 "
            "classes): classifier.5.weight has shape (10, 84) there and (2, 84) here")
    torch.save({"model": LeNetRen(2).state_dict(), "unit": 20}, copy / "checkpoints" / "best.pt")
    refused(cdb_eval(str(copy), "--checkpoint", "best", cwd=base),
            "is not a checkpoint of this run's model (lenet5, 2 classes): it lacks")
    # a last.pt of another run of this model: its recorded settings differ
    state = torch.load(copy / "checkpoints" / "last.pt", weights_only=True)
    state["settings"]["trainer.lr"] = 0.5
    torch.save(state, copy / "checkpoints" / "last.pt")
    refused(cdb_eval(str(copy), cwd=base), "belongs to another run: trainer.lr is 0.5 there and 0.05 in this run's")
    assert not (copy / "eval").exists()


def test_a_folder_that_is_not_a_finished_run_is_refused(trained, tmp_path):
    base, run, _ = trained
    refused(cdb_eval(str(tmp_path / "nowhere"), cwd=base), f"{tmp_path / 'nowhere'} is not a run directory")
    refused(cdb_eval(str(tmp_path), cwd=base), f"{tmp_path} is not a finished run directory: config.yaml is missing")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished, ignore=shutil.ignore_patterns("eval"))
    (unfinished / "metrics.json").unlink()
    refused(cdb_eval(str(unfinished), cwd=base), "is not a finished run directory: metrics.json is missing")
    (unfinished / "metrics.json").write_text(json.dumps({"status": "diverged", "steps": [10, 20]}))
    refused(cdb_eval(str(unfinished), cwd=base), "its metrics.json says status 'diverged', not 'complete'")
    assert not (unfinished / "eval").exists()
