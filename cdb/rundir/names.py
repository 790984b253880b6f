"""Settings that run records spell otherwise than configs/ does. The MNIST campaign's records in results/runs/ are
trained by the code of commit a89e450 (studies/mnist_protocol/protocol_campaign.sh), whose config.yaml files and
checkpoints name these settings by the keys on the left (so do the own-data study's runs behind
results/own_data_study/). Readers of a record (cdb-table, cdb-figures, cdb-eval) take it through `current_names`,
so such a record reads as a run of this code: the same tables, the same checks.

    dataset.input_scale -> dataset.normalize   (MNIST: unit / standard)
    trainer.warmup      -> trainer.lr_warmup   (units of linear learning-rate warm-up)
    loss=cdb_quick      -> loss=cdb_stabilised (configs/loss/cdb_stabilised.yaml)
"""
from __future__ import annotations

import copy

# {dotted key in a record: dotted key in configs/}
SETTINGS = {"dataset.input_scale": "dataset.normalize", "trainer.warmup": "trainer.lr_warmup"}
# {loss.name in a record: its configs/loss/<name>.yaml}
LOSSES = {"cdb_quick": "cdb_stabilised"}


def _parent(config: dict, dotted: str, make: bool = False) -> tuple[dict | None, str]:
    *path, key = dotted.split(".")
    node = config
    for k in path:
        if make and isinstance(node, dict):
            node = node.setdefault(k, {})
        else:
            node = node.get(k) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), key


def current_names(config: dict) -> dict:
    """A copy of a run's config (config.yaml as a nested dict) with the settings of SETTINGS and the loss names of
    LOSSES under their configs/ names; a config that holds the configs/ names already is returned unchanged."""
    out = copy.deepcopy(config)
    for old, new in SETTINGS.items():
        node, key = _parent(out, old)
        if node is not None and key in node:
            value = node.pop(key)
            target, new_key = _parent(out, new, make=True)
            target.setdefault(new_key, value)
    loss = out.get("loss")
    if isinstance(loss, dict) and loss.get("name") in LOSSES:
        loss["name"] = LOSSES[loss["name"]]
    return out


def current_settings(flat: dict) -> dict:
    """The same for flat {dotted key: value} settings (what a checkpoint records: cdb.rundir.settings_of)."""
    out = {SETTINGS.get(k, k): v for k, v in flat.items()}
    if out.get("loss.name") in LOSSES:
        out["loss.name"] = LOSSES[out["loss.name"]]
    return out
