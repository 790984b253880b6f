"""cdb.rundir.names: run records spelled by the campaign's frozen code (commit a89e450) read under configs/ names."""
import yaml
from omegaconf import OmegaConf

from cdb.report.runs import get, load_runs
from cdb.rundir.names import LOSSES, SETTINGS, current_names, current_settings
from helpers import REPO, compose

FROZEN = {"seed": 0, "dataset": {"name": "mnist_imbalanced", "input_scale": "standard", "majority_ratio": 0.99},
          "trainer": {"lr": 0.001, "warmup": 0}, "loss": {"name": "cdb_quick", "warmup": 10}}


def test_a_frozen_record_reads_under_configs_names():
    cfg = current_names(FROZEN)
    assert cfg == {"seed": 0, "dataset": {"name": "mnist_imbalanced", "normalize": "standard", "majority_ratio": 0.99},
                   "trainer": {"lr": 0.001, "lr_warmup": 0}, "loss": {"name": "cdb_stabilised", "warmup": 10}}
    assert FROZEN["dataset"]["input_scale"] == "standard"      # the record itself is left as it is
    assert current_names(cfg) == cfg                           # a record of this code is unchanged


def test_flat_settings_read_the_same_way():
    flat = {"dataset.input_scale": "unit", "trainer.warmup": 5, "loss.name": "cdb_quick", "loss.warmup": 10}
    assert current_settings(flat) == {"dataset.normalize": "unit", "trainer.lr_warmup": 5,
                                      "loss.name": "cdb_stabilised", "loss.warmup": 10}


def test_every_name_maps_to_a_setting_or_loss_this_code_has():
    cfg = OmegaConf.to_container(compose(["trainer=cifar_lt"]), resolve=False)
    for old, new in SETTINGS.items():
        assert get(cfg, new, "missing") != "missing" and get(cfg, old, "missing") == "missing", (old, new)
    for old, new in LOSSES.items():
        assert (REPO / "configs" / "loss" / f"{new}.yaml").is_file()
        assert not (REPO / "configs" / "loss" / f"{old}.yaml").exists()


def test_the_committed_campaign_records_load_under_configs_names():
    path = next(p for p in (REPO / "results" / "runs" / "calib_p3").rglob("config.yaml") if "[" not in str(p))
    assert "input_scale" in yaml.safe_load(path.read_text())["dataset"]       # as the frozen code wrote it
    (run,) = load_runs(path.parent)
    assert run.cfg["dataset"]["normalize"] == "unit" and "input_scale" not in run.cfg["dataset"]
    assert run.cfg["trainer"]["lr_warmup"] == 0 and "warmup" not in run.cfg["trainer"]
