"""LDAM's cosine head (Cao et al. 2019): the loss config selects it, logits are cosines, s = 30 scales them."""
import math

import pytest
import torch
import torch.nn.functional as F

from cdb.core.errors import ConfigError
from cdb.losses import build_criterion
from cdb.models import build_model
from cdb.models.heads import NormedLinear
from helpers import compose


def test_normed_linear_gives_cosines_by_hand():
    head = NormedLinear(2, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[3.0, 0.0], [4.0, 2.0]]))  # columns: class weights (3, 4) and (0, 2)
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # cos((1,0),(3,4)) = 3/5, cos((1,0),(0,1)) = 0; cos((1,1),(3,4)) = 7/(5 sqrt 2), cos((1,1),(0,1)) = 1/sqrt 2
    expected = [[0.6, 0.0], [7 / (5 * math.sqrt(2)), 1 / math.sqrt(2)]]
    assert torch.allclose(head(x), torch.tensor(expected), atol=1e-6)
    fresh = NormedLinear(8, 5)  # reference init: every class column of unit length
    assert fresh.weight.norm(dim=0).tolist() == pytest.approx([1.0] * 5, rel=1e-4)


def test_ldam_drw_config_builds_a_cosine_head_and_other_losses_keep_linear():
    ldam = compose(["loss=ldam_drw", "dataset=cifar_lt"])
    ce = compose(["loss=ce", "dataset=cifar_lt"])
    assert ldam.loss.head == "cosine" and ldam.loss.scale == 30.0 and ldam.loss.max_margin == 0.5
    assert "head" not in ce.loss
    m = build_model("resnet32", 100, (3, 32, 32), head=ldam.loss.head, blocks=1)
    assert isinstance(m.fc, NormedLinear)
    logits = m(torch.randn(4, 3, 32, 32))
    assert logits.abs().max() <= 1.0 + 1e-6  # cosines
    assert isinstance(build_model("resnet32", 100, (3, 32, 32), blocks=1).fc, torch.nn.Linear)


def test_ldam_loss_scales_cosine_logits_by_s():
    counts = torch.tensor([100, 1])
    crit = build_criterion({"base": "ldam", "weighting": "none", "max_margin": 0.5, "scale": 30.0, "head": "cosine"},
                           2, counts)
    cos = torch.tensor([[0.2, 0.1], [0.3, 0.4]])
    y = torch.tensor([0, 1])
    # margins: m_c ~ n_c^(-1/4) with the rarest at 0.5: m_0 = 0.5 * (100 ** -0.25) / 1, m_1 = 0.5
    m0, m1 = 0.5 * 100 ** -0.25, 0.5
    z = torch.tensor([[0.2 - m0, 0.1], [0.3, 0.4 - m1]]) * 30
    assert float(crit(cos, y)) == pytest.approx(float(F.cross_entropy(z, y)), rel=1e-6)


def test_unknown_head_is_one_line_error():
    with pytest.raises(ConfigError, match="loss.head"):
        build_model("lenet5", 2, (1, 28, 28), head="arc")
