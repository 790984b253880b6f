"""ResNet-32 packs on a small CIFAR-100-LT in the real on-disk format (helpers.datasets.write_cifar100): a run
trained inside a pack of 4 (seeds 0 and 1 x imbalance 10 and 100, CE and CDB-CE) gives the same class-wise
validation counts, CDB weights and test confusion matrices as the run trained alone, each built as cdb-run builds
it (compose + cdb.build.build_run: the data split, the model drawn from the run's seed). Bitwise equality is not
expected (a grouped convolution sums in another order than a plain one); the stated tolerance
(docs/performance.md) is equal counts and weights, training losses within 1e-3 relative, and here also every
weight and BatchNorm statistic of the final checkpoints within 1e-4 + 1e-4 x its size.

The learning rate is low on purpose: on random pixels with 100 classes a float32 ResNet-32 step is badly
conditioned (the run alone differs from its own float64 step by up to 1e-2 relative in some gradients, as much as
the pack does), larger steps amplify that tenfold per step, and with near-tied logits an argmax then flips; at
lr 0.002 the logits of pack and alone differ by < 1e-3 while the smallest top-2 margin is > 3e-3."""
from __future__ import annotations

import json

import pytest
import torch

from helpers import compose, read_log
from helpers.datasets import write_cifar100

# trainer.unit=step: runs of different imbalance (training sets of different sizes) share a pack
TINY = ["dataset=cifar_lt", "dataset.val_per_class=1", "trainer.unit=step", "trainer.length=4",
        "trainer.eval_every=2", "trainer.batch_size=32", "trainer.lr=0.002", "trainer.lr_warmup=0",
        "trainer.milestones=[3]", "trainer.device=cpu", "trainer.progress=false", "trainer.eval_batch_size=64",
        "threads=1"]
# two seeds x two imbalances, CE and CDB-CE (each seed and each imbalance has both losses)
RUNS = [("0", "10", "ce"), ("0", "100", "cdb"), ("1", "10", "cdb"), ("1", "100", "ce")]


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar100(root, train_per_class=5, test_per_class=1)
    return root


def _build(root, out, runs=RUNS, extra=()):
    from cdb.build import build_run

    states = []
    for seed, imbalance, loss in runs:
        cfg = compose([*TINY, f"data_root={root}", f"seed={seed}", f"imbalance={imbalance}", f"loss={loss}", *extra])
        states.append(build_run(cfg, out / f"seed={seed},imbalance={imbalance},loss={loss}"))
    return states


@pytest.mark.parametrize("layout", [[], ["trainer.channels_last=true"]], ids=["channels_first", "channels_last"])
def test_a_resnet32_run_in_a_pack_of_4_equals_the_run_alone(cifar, tmp_path, layout):
    from cdb.rundir.io import load_checkpoint
    from cdb.train.loop import fit, train_alone
    from cdb.train.pack import pack_refusal

    packed_states = _build(cifar, tmp_path / "pack", extra=layout)
    assert all(t.cfg.channels_last == bool(layout) for t in packed_states)
    assert len({len(t.data.train) for t in packed_states}) == 2   # imbalance 10 and 100: two training-set sizes
    assert pack_refusal(packed_states) is None                      # they train as one packed network
    packed = fit(packed_states)
    alone = [train_alone(t) for t in _build(cifar, tmp_path / "alone", extra=layout)]
    for t, p, a in zip(packed_states, packed, alone):
        name = t.run_dir.name
        lp, la = read_log(t.run_dir), read_log(tmp_path / "alone" / name)
        assert [r["unit"] for r in lp] == [2, 4]
        assert [r["val_class_accuracy"] for r in lp] == [r["val_class_accuracy"] for r in la], name
        assert [r["weights"] for r in lp] == [r["weights"] for r in la], name
        for rp, ra in zip(lp, la):
            assert rp["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-3), name
        for ckpt in ("last", "best"):
            assert p["checkpoints"][ckpt]["test_confusion"] == a["checkpoints"][ckpt]["test_confusion"], (name, ckpt)
        assert p["test"] == a["test"] and p["final_weights"] == a["final_weights"]
        wp, wa = (load_checkpoint(d / "checkpoints" / "last.pt")["model"] for d in (t.run_dir, tmp_path / "alone" / name))
        for n in wa:  # measured: at most 1.1e-4 (a BatchNorm running variance of 3.4), most far below
            torch.testing.assert_close(wp[n], wa[n], rtol=1e-4, atol=1e-4, msg=f"{name} {n}")
    # the four runs differ: their data (seed, imbalance) and losses; CDB-CE moved its weights
    assert len({json.dumps(t.data.info["train_indices"]["train"]) for t in packed_states}) == 4
    assert packed[1]["final_weights"] != packed[0]["final_weights"] == [1.0] * 100


def test_ldam_runs_pack_with_their_cosine_head(cifar, tmp_path):
    """LDAM-DRW's runs replace the classifier by the cosine head (NormedLinear): they pack with each other (one
    batched matmul of normalised features and class weights) and give the counts of the runs alone."""
    from cdb.models.packed import PackedNormedLinear
    from cdb.train.loop import fit, train_alone
    from cdb.train.pack import Pack

    runs = [("0", "10", "ldam_drw"), ("1", "100", "ldam_drw")]
    extra = ["model.blocks=1", "loss.drw_start=4"]  # the deferred re-weighting switches on at the second validation
    states = _build(cifar, tmp_path / "pack", runs, extra)
    assert isinstance(Pack(states).packed.net.fc, PackedNormedLinear)
    packed = fit(states)
    alone = [train_alone(t) for t in _build(cifar, tmp_path / "alone", runs, extra)]
    for t, p, a in zip(states, packed, alone):
        lp, la = read_log(t.run_dir), read_log(tmp_path / "alone" / t.run_dir.name)
        assert [r["val_class_accuracy"] for r in lp] == [r["val_class_accuracy"] for r in la]
        assert [r["weights"] for r in lp] == [r["weights"] for r in la] and lp[-1]["weights"] != lp[0]["weights"]
        assert p["checkpoints"]["last"]["test_confusion"] == a["checkpoints"]["last"]["test_confusion"]
