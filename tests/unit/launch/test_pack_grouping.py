"""cdb.launch.pack: sweep jobs group into packs by what a pack shares (trainer settings, model); runs of a meta
weighting always train alone."""
from __future__ import annotations

from helpers import compose


def test_sweep_jobs_group_by_what_a_pack_shares():
    from cdb.launch.pack import pack_key

    base = ["trainer.unit=step"]
    k = pack_key(compose([*base, "seed=1", "loss=ce", "dataset.majority_ratio=0.9"]))
    assert k == pack_key(compose([*base, "seed=2", "loss=cdb", "loss.tau=2", "dataset.majority_ratio=0.99"]))
    assert k != pack_key(compose([*base, "trainer.batch_size=50"]))
    assert k != pack_key(compose([*base, "model=resnet32"]))
    l2rw = compose([*base, "loss=l2rw"])
    assert pack_key(l2rw) != pack_key(compose([*base, "loss=l2rw"]))  # meta weightings always train alone
