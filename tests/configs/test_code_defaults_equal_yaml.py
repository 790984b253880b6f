"""A dataset builder's keyword defaults are the values its YAML gives, so calling a builder from Python trains what
`cdb-run dataset=NAME` trains (interpolations such as ${data_root} and settings the YAML leaves null are skipped)."""
from __future__ import annotations

import inspect

import pytest
from omegaconf import OmegaConf

from cdb.data import BUILDERS
from helpers import REPO


def _yaml_values(name: str) -> dict:
    node = OmegaConf.load(REPO / "configs" / "dataset" / f"{name}.yaml").get("dataset", {})
    raw = OmegaConf.to_container(node, resolve=False)
    return {k: v for k, v in raw.items() if not (isinstance(v, str) and "${" in v) and k != "name"}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_builder_defaults_are_the_yamls(name):
    params = inspect.signature(BUILDERS[name]).parameters
    differ = {k: (params[k].default, v) for k, v in _yaml_values(name).items()
              if k in params and params[k].default is not inspect.Parameter.empty
              and (list(params[k].default) if isinstance(params[k].default, tuple) else params[k].default) != v}
    assert not differ, f"dataset {name}: code default vs YAML: {differ}"
