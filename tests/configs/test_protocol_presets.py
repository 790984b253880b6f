"""protocol=p1..p4 (configs/protocol/): each MNIST protocol of docs/protocol.md as one preset, composing exactly the
config its model, trainer and input normalisation give when spelled out, over any loss or experiment preset."""
import pytest
from omegaconf import OmegaConf

from cdb.core.errors import ConfigError
from helpers import REPO, compose

# docs/protocol.md: what each protocol is, in the groups and keys it sets
SPELLED_OUT = {
    "p1": ["model=lenet5", "trainer=mnist", "dataset.normalize=standard"],
    "p2": ["model=lenet_ren", "trainer=mnist_steps", "dataset.normalize=unit"],
    "p3": ["model=lenet_ren", "trainer=mnist_ren", "dataset.normalize=unit"],
    "p4": ["model=lenet5", "trainer=mnist_steps", "dataset.normalize=standard"],
}


def _resolved(overrides):
    return OmegaConf.to_container(compose(overrides), resolve=True)


def test_every_protocol_preset_is_listed():
    assert sorted(p.stem for p in (REPO / "configs" / "protocol").glob("*.yaml")) == sorted(SPELLED_OUT)


@pytest.mark.parametrize("protocol", sorted(SPELLED_OUT))
@pytest.mark.parametrize("extra", [[], ["loss=l2rw", "dataset.majority_ratio=0.9"], ["experiment=table1_quick"]])
def test_a_protocol_composes_what_its_overrides_compose(protocol, extra):
    assert _resolved([f"protocol={protocol}", *extra]) == _resolved([*SPELLED_OUT[protocol], *extra])


def test_p3_is_the_mnist_default():
    assert _resolved(["protocol=p3"]) == _resolved([])


def test_the_command_line_wins_over_a_protocol():
    cfg = compose(["protocol=p1", "model=lenet_ren", "dataset.normalize=unit", "trainer.length=10"])
    assert (cfg.model.name, cfg.dataset.normalize, cfg.trainer.length, cfg.trainer.unit) == \
        ("lenet_ren", "unit", 10, "epoch")


@pytest.mark.parametrize("dataset", ["cifar_lt", "imagenet_lt", "egtea"])
def test_a_protocol_on_another_dataset_is_refused_in_one_line(dataset):
    from cdb.data import build_dataset

    d = OmegaConf.to_container(compose([f"dataset={dataset}", "protocol=p1"]).dataset, resolve=True)
    with pytest.raises(ConfigError, match="dataset.normalize") as err:
        build_dataset(d.pop("name"), seed=0, **d)
    assert "\n" not in str(err.value)
