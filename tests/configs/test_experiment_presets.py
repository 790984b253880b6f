"""Experiment presets table3-7 compose to the paper's settings, and the quick profiles and the demo are the MNIST
default protocol (P3) unshortened."""
from __future__ import annotations

import pytest

from helpers import compose


PRESETS = {
    # preset: (run folder name, dataset, model, trainer lr, swept parameters)
    "table3": ("table3", "cifar_lt", "resnet32", 0.1, {"imbalance": "200,100,50,20,10"}),
    "table4": ("table4", "cifar_lt", "resnet32", 0.1, {"loss.tau": "0,0.5,1,1.5,2,5,dynamic",
                                                       "imbalance": "200,100,50,20,10"}),
    "table5": ("table5", "imagenet_lt", "resnet10", 0.1, {}),
    "table6": ("table6", "egtea", "resnext3d_101", 0.001, {"loss": "ce,focal,cb,cdb"}),  # the paper's rows
    "table7": ("table6", "egtea", "resnext3d_101", 0.001, {"loss": "ce,focal,cb,cdb"}),  # the Table 6 runs
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_composes(preset):
    name, dataset, model, lr, sweep = PRESETS[preset]
    cfg = compose([f"experiment={preset}"], hydra=True)
    assert cfg.name == name and cfg.dataset.name == dataset and cfg.model.name == model
    assert cfg.trainer.lr == lr and cfg.loss.weighting == "cdb" and cfg.loss.tau == "dynamic"
    assert dict(cfg.hydra.sweeper.params or {}) == sweep
    assert cfg.resume == (preset == "table7")


@pytest.mark.parametrize("experiment", ["table1_quick", "table2_quick", "demo"])
def test_quick_profile_is_the_protocol_itself(experiment):
    """docs/protocol.md, "Quick profile": a P3 run costs about 5 CPU-minutes, so the quick profile keeps the learning
    rate, momentum, batch and CDB update cadence of P3 (Ren et al.'s mnist_train.py: 8000 steps of batch 100, lr 1e-3
    halved after 4000, momentum 0.9, no weight decay; their reweight.py: 4000 steps for L2RW) and shrinks nothing:
    every value that computes something equals the full profile's (table1/table2), the quick one only has fewer
    seeds. No quick profile raises the learning rate above its protocol's."""
    from cdb.rundir import settings_of
    from omegaconf import OmegaConf
    full = "table2" if experiment == "table2_quick" else "table1"
    for loss in ("ce", "ifw", "focal", "cb", "eql", "l2rw", "cdb"):
        quick, ref = (compose([f"experiment={e}", f"loss={loss}"]) for e in (experiment, full))
        t = quick.trainer
        length, milestone = (4000, 2001) if loss == "l2rw" else (8000, 4001)
        assert (t.unit, t.length, list(t.milestones), t.lr, t.gamma, t.eval_every, t.batch_size, t.momentum,
                t.weight_decay) == ("step", length, [milestone], 0.001, 0.5, 50, 100, 0.9, 0.0)
        assert (quick.model.name, quick.dataset.normalize) == ("lenet_ren", "unit")
        mine, theirs = (settings_of(OmegaConf.to_container(c, resolve=True)) for c in (quick, ref))
        assert mine == theirs, sorted(k for k in mine if mine[k] != theirs.get(k))
    cdb = compose([f"experiment={experiment}", "loss=cdb"]).loss
    assert (cdb.tau, cdb.warmup, cdb.floor, cdb.min_weight, cdb.ema) == ("dynamic", 0, 0, 0, 0)


def test_quick_tables_sweep_three_seeds_of_the_full_tables_grid():
    for quick, full in (("table1_quick", "table1"), ("table2_quick", "table2")):
        q, f = (dict(compose([f"experiment={e}"], hydra=True).hydra.sweeper.params) for e in (quick, full))
        assert (q.pop("seed"), f.pop("seed")) == ("range(3)", "range(10)") and q == f
