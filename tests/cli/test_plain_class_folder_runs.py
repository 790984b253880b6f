"""dataset=folder on a plain <class>/<image> folder (torchvision's ImageFolder layout, no train/ or test/): test
and validation are carved per class with the seed, their sizes are in the dry run and data.json; and a run whose
CDB warm-up is not shorter than its validations says so in one line at the start."""
import json

import numpy as np
import pytest
from PIL import Image

from helpers import FAST, cdb_run, run_dirs
from helpers.digits import RAW, STEPS, read_idx

PER_CLASS = {"four": (4, 60), "nine": (9, 90)}  # folder: (digit, images)
SIZES = ["dataset.val_per_class=10", "dataset.test_per_class=15"]


@pytest.fixture(scope="module")
def plain(mnist_dir, tmp_path_factory):
    """<root>/four/*.png and <root>/nine/*.png, real MNIST digits, nothing else."""
    raw = mnist_dir / "MNIST" / "raw"
    x, y = read_idx(raw / RAW[0]), read_idx(raw / RAW[1])
    root = tmp_path_factory.mktemp("plain")
    for name, (digit, n) in PER_CLASS.items():
        (root / name).mkdir()
        for i in np.nonzero(y == digit)[0][:n]:
            Image.fromarray(x[i], mode="L").save(root / name / f"{i:05d}.png")
    return root


def test_dry_run_states_the_carved_sizes(plain, tmp_path):
    r = cdb_run(tmp_path, "dataset=folder", f"dataset.path={plain}", *SIZES, "dry_run=true", data=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # train = all - 15 test - 10 val per class
    assert lines[lines.index("class  train  val  test") + 1: lines.index("class  train  val  test") + 4] == [
        " four     35   10    15", " nine     65   10    15", "total    100   20    30"]
    assert any(ln.startswith("note: ") and "test (15 images per class) and validation (10 per class)" in ln
               and "seed 0" in ln for ln in lines), r.stdout


def test_carved_splits_are_disjoint_cover_the_folder_and_follow_the_seed(plain):
    from cdb.data.folder import build_folder

    def files(seed):
        d = build_folder(str(plain), str(plain), seed=seed, val_per_class=10, test_per_class=15)
        return {s: d.info["files"][s] for s in ("train", "val", "test")}, d

    a, data = files(0)
    assert data.class_names == ["four", "nine"] and data.info["carved"] == {
        "from": str(plain), "test_per_class": 15, "val_per_class": 10, "seed": 0}
    every = sorted(str(p.relative_to(plain)) for p in plain.rglob("*.png"))
    assert sorted(a["train"] + a["val"] + a["test"]) == every  # each image in exactly one split
    assert len(set(a["train"]) | set(a["val"]) | set(a["test"])) == len(every)
    for split, n in (("val", 10), ("test", 15)):
        assert sum(p.startswith("four/") for p in a[split]) == n and sum(p.startswith("nine/") for p in a[split]) == n
    assert files(0)[0] == a and files(1)[0]["test"] != a["test"]  # seeded


def test_a_class_too_small_to_carve_is_one_line(plain, tmp_path):
    r = cdb_run(tmp_path, "dataset=folder", f"dataset.path={plain}", "dataset.test_per_class=55", "dry_run=true",
                data=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"cdb-run: error: class 'four' has 60 images in {plain / 'four'}; dataset.test_per_class=55 go to test and "
        "dataset.val_per_class=20 to validation, and at least one must remain for training (lower them)"]


def test_a_plain_folder_trains_and_data_json_records_the_carving(plain, tmp_path):
    r = cdb_run(tmp_path, "dataset=folder", f"dataset.path={plain}", *SIZES, "loss=cdb", *STEPS, data=tmp_path)
    assert r.returncode == 0, r.stderr
    (run,) = run_dirs(tmp_path / "out")
    data = json.loads((run / "data.json").read_text())
    assert (data["train"], data["val"], data["test"]) == (100, 20, 30)
    assert data["carved"] == {"from": str(plain), "test_per_class": 15, "val_per_class": 10, "seed": 0}
    metrics = json.loads((run / "metrics.json").read_text())
    assert sum(map(sum, metrics["checkpoints"]["last"]["test_confusion"])) == 30


def test_a_warm_up_as_long_as_the_run_is_said_at_the_start(mnist_dir, tmp_path):
    # FAST: 6 steps, a validation every 3: two validations, so loss.warmup=2 leaves CDB no update
    r = cdb_run(tmp_path, "loss=cdb", "loss.warmup=2", *FAST, data=mnist_dir)
    assert r.returncode == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "loss.warmup=2" in ln]
    assert said == ["cdb-run: WARNING: loss.warmup=2 is not shorter than this run's 2 validations "
                    "(trainer.length=6, trainer.eval_every=3): CDB never updates its weights and the run is plain "
                    "CE; lower loss.warmup or validate more often"]
    dry = cdb_run(tmp_path, "loss=cdb", "loss.warmup=2", *FAST, "dry_run=true", data=mnist_dir)
    assert f"note: {said[0].removeprefix('cdb-run: WARNING: ')}" in dry.stdout.splitlines()
    shorter = cdb_run(tmp_path, "loss=cdb", "loss.warmup=1", *FAST, "dry_run=true", data=mnist_dir)
    assert shorter.returncode == 0 and "loss.warmup" not in shorter.stdout + shorter.stderr
