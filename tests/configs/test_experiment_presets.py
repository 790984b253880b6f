"""Experiment presets table3-7 compose to the paper's settings, and the quick profiles are the paper's schedule
compressed by one factor."""
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
def test_quick_profile_is_the_paper_schedule_compressed_by_one_factor(experiment):
    """Paper sec. 4.2: "trained for 4000 epochs ... batch size of 100 ... momentum of 0.9, weight decay of
    0.0005 and an initial learning rate of 0.001, which is decayed by 0.1 after 3000 epochs". The quick
    profile divides length and milestone by s and multiplies the lr by s (equal lr x steps), one s for all;
    every loss of Table 1 trains at that lr, and the CDB rule is the literal one."""
    quick = [compose([f"experiment={experiment}", f"loss={loss}"])
             for loss in ("ce", "ifw", "focal", "cb", "eql", "l2rw", "cdb")]
    for cfg in quick:
        t = cfg.trainer
        s = 4000 / t.length
        assert s == 20 and list(t.milestones) == [3000 / s] and t.lr == pytest.approx(0.001 * s)
        assert (t.unit, t.eval_every, t.batch_size, t.momentum, t.weight_decay, t.gamma) == \
            ("epoch", 1, 100, 0.9, 0.0005, 0.1)
    cdb = quick[-1].loss
    assert (cdb.tau, cdb.warmup, cdb.floor, cdb.min_weight, cdb.ema) == ("dynamic", 0, 0, 0, 0)
