"""Configs say what they mean: run.log names the preset behind each group, and each setting has one name."""
from conftest import FAST, cdb_run, run_dirs


def test_run_log_says_which_preset_set_what(tmp_path, mnist_dir):
    proc = cdb_run(tmp_path, "loss=eql", *FAST, data=mnist_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = run_dirs(tmp_path / "out")
    line = next(x for x in (run / "run.log").read_text().splitlines() if "presets:" in x)
    assert "loss=eql," in line                                                # given on the command line
    assert "model=lenet5 (chosen by configs/dataset/mnist_imbalanced.yaml)" in line
    assert "trainer=mnist (chosen by configs/dataset/mnist_imbalanced.yaml)" in line
    assert "dataset_loss=mnist_imbalanced_eql (for this dataset and loss)" in line
    assert "dataset=mnist_imbalanced (default)" in line


def test_dataset_imbalance_has_one_name(tmp_path):
    proc = cdb_run(tmp_path, "dataset=cifar_lt", "dataset.imbalance=50")
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1
    assert err == "cdb-run: error: dataset.imbalance='50' is not allowed: set by the top-level setting: use " \
                  "imbalance=... instead"
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.yaml"))
