"""studies/own_data/own_data_study.py (make own-data-study): its run list, the pair ranking from confusion matrices
and the validation selection table, checked by hand on fake run directories (the study itself trains for an hour
and is never part of the test suite)."""
import json
import sys

import pandas as pd
import yaml

from helpers import REPO

sys.path.insert(0, str(REPO / "studies" / "own_data"))
import own_data_study as study  # noqa: E402


def test_run_list_is_every_method_on_every_folder_for_three_seeds(tmp_path):
    lines = study.lines(tmp_path / "f")
    assert len(lines) == len(study.METHODS) * 3 * 3 == 72
    assert len(set(lines)) == len(lines)
    assert all("threads=1 resume=true" in x and f"data_root={tmp_path / 'f'} dataset=folder" in x for x in lines)
    folders = {x.split("dataset.path=")[1].split()[0] for x in lines}
    assert folders == {"lt10", "pair_3_9", "pair_2_7"}
    # the loss=cdb rows name the settings a folder default of loss=cdb may change, so they stay the same runs
    cdb = [x for x in lines if "loss=cdb " in x]
    assert len(cdb) == 3 * 3 * 3 and all("loss.warmup=0 loss.floor=0" in x for x in cdb)
    assert sum("loss.tau_rule=authors_sigmoid" in x for x in cdb) == 9
    assert sum("loss.tau_rule=paper" in x for x in cdb) == 9


def test_folders_are_the_profiles_the_docs_state():
    f = study.folders()
    assert f["lt10"]["train"] == [50, 83, 139, 232, 387, 645, 1077, 1796, 2997, 5000]   # 9 is the head
    assert f["pair_3_9"] == {"digits": [3, 9], "train": [50, 4950], "test_from_train": False}
    assert f["rank10"]["test_from_train"] and f["rank10"]["train"] == [1000] * 10


def _run(root, setting, seed, metrics):
    d = root / setting / f"seed={seed}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "loss": {"label": "x"},
                                                   "dataset": {"name": "folder"}}))
    (d / "metrics.json").write_text(json.dumps({"status": "complete", "selected": "last", **metrics}))


def test_pairs_are_ranked_by_confusions_in_both_directions(tmp_path):
    runs = tmp_path / "own_data_pairs"
    names = ["a", "b", "c"]
    # run 0: a->b 2, b->a 1, c->a 1; run 1: b->c 1, c->b 1, a->b 1  => a/b 4, b/c 2, a/c 1
    for seed, cm in enumerate([[[7, 2, 0], [1, 9, 0], [1, 0, 9]], [[9, 1, 0], [0, 9, 1], [0, 1, 9]]]):
        _run(runs, "loss=ce", seed, {"class_names": names, "checkpoints": {"last": {"test_confusion": cm}}})
    df = study.rank_pairs(runs)
    assert list(df["pair"]) == ["a/b", "b/c", "a/c"] and list(df["confusions"]) == [4, 2, 1]
    assert (df.loc[1, "a_as_b"], df.loc[1, "b_as_a"]) == (3, 1)
    assert df.attrs["errors"] == 7 and df.attrs["images"] == 29 + 30


def _ckpt(val_bal, val_per_class, unit):
    return {"unit": unit, "val": {"macro_recall": val_bal, "per_class_accuracy": val_per_class,
                                  "collapsed": [str(c) for c, a in enumerate(val_per_class) if a < 1]},
            "test": {"error": 1.0, "macro_recall": 99.0, "per_class_accuracy": [99.0, 99.0]}}


def test_selection_table_reads_validation_only_and_averages_by_hand(tmp_path):
    runs = tmp_path / "own_data_study"
    for seed, (last, best) in enumerate([(80.0, 90.0), (60.0, 70.0)]):
        _run(runs, "dataset.path=pair_3_9,dataset=folder,loss=ce", seed,
             {"checkpoints": {"last": _ckpt(last, [70.0, 90.0], 30), "best": _ckpt(best, [80.0, 100.0], 9)},
              "test": {"error": 50.0}, "class_names": ["3", "9"], "train_wall_time_s": 60.0})
    _run(runs, "dataset.path=lt10,dataset=folder,loss.floor=0,loss.tau=1,loss.warmup=0,loss=cdb", 0,
         {"checkpoints": {"last": _ckpt(50.0, [0.0, 100.0], 30), "best": _ckpt(75.0, [50.0, 100.0], 3)},
          "test": {"error": 50.0}, "class_names": ["3", "9"], "train_wall_time_s": 120.0})
    wide = study.write_selection(runs, tmp_path / "res", "cmd")
    # ce, last: pair_3_9 (80 + 60) / 2 = 70; best (90 + 70) / 2 = 80. The loss=cdb run is named by its method
    # although its directory lists the overrides sorted
    assert wide.loc[("ce", "last"), "pair_3_9"] == 70.0 and wide.loc[("ce", "best"), "pair_3_9"] == 80.0
    assert (wide.loc[("cdb_tau1", "last"), "lt10"], wide.loc[("cdb_tau1", "best"), "lt10"]) == (50.0, 75.0)
    assert wide.loc[("cdb_tau1", "last"), "collapsed on val"] == 1 and wide.loc[("ce", "best"), "collapsed on val"] == 0
    cells = pd.read_csv(tmp_path / "res" / "selection.csv")
    assert set(cells.columns) == {"method", "select", "folder", "mean", "std", "n", "val_collapsed"}
    md = (tmp_path / "res" / "selection.md").read_text()
    assert "Command: `cmd`" in md and "70.00 ± 10.00 (2)" in md and "3 runs, 0.07 h of training" in md


def test_holdout_images_are_training_images_in_none_of_the_folders_splits(mnist_dir):
    from cdb.data.mnist import load_mnist

    data = load_mnist(str(mnist_dir))
    for name in ("lt10", "pair_3_9"):
        for digit, parts in study.draws(study.folders()[name], data):
            used = set(parts["train"][1].tolist()) | set(parts["val"][1].tolist())
            hold = set(parts["holdout"][1].tolist())
            assert len(hold) == study.HOLDOUT and not used & hold, (name, digit)
            assert parts["holdout"][0] is data[True][0] and parts["test"][0] is data[False][0]  # test: MNIST test
    # the same draws each time: the folders (and holdouts) depend on the seed only
    a = [p["train"][1][:5].tolist() for _, p in study.draws(study.folders()["pair_2_7"], data)]
    b = [p["train"][1][:5].tolist() for _, p in study.draws(study.folders()["pair_2_7"], data)]
    assert a == b
