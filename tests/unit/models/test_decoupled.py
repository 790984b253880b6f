"""The decoupled classifiers of Kang et al. 2020 (sec. 4) in-process: tau-normalised weights computed by hand, tau = 0
and LWS with unit scales give the source logits exactly, tau is the argmax of validation accuracy over the grid in
a case built by hand, cRT changes only the classifier (feature weights and BatchNorm statistics bit-identical), and
a model whose last layer is not an nn.Linear is refused in one line."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from cdb.core.errors import CdbError
from cdb.models.decoupled import Decoupled, ScaledLinear, split_classifier, tau_normalize, tau_normalized
from cdb.models.heads import use_head
from cdb.models.lenet import LeNet5
from cdb.train.decouple import TAU_GRID, choose_tau


def _linear(weight, bias) -> nn.Linear:
    lin = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        lin.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return lin


def test_tau_normalised_weights_by_hand():
    lin = _linear([[3.0, 4.0], [0.0, 2.0]], [0.5, -1.0])   # row norms 5 and 2
    one = tau_normalized(lin, 1.0)
    assert one.weight.flatten().tolist() == pytest.approx([0.6, 0.8, 0.0, 1.0], abs=1e-7)
    half = tau_normalized(lin, 0.5)                          # divided by sqrt(5) and sqrt(2)
    assert half.weight.flatten().tolist() == pytest.approx([3 / math.sqrt(5), 4 / math.sqrt(5), 0.0, math.sqrt(2)],
                                                           abs=1e-6)
    two = tau_normalized(lin, 2.0)                           # divided by 25 and 4
    assert two.weight.flatten().tolist() == pytest.approx([0.12, 0.16, 0.0, 0.5], abs=1e-7)
    assert one.bias.tolist() == half.bias.tolist() == [0.5, -1.0]      # the bias is kept as it is
    assert not any(p.requires_grad for p in one.parameters())
    assert tau_normalize(torch.zeros(1, 3), 1.0).tolist() == [[0.0, 0.0, 0.0]]   # a zero row stays zero


def test_tau_zero_leaves_the_logits_unchanged():
    torch.manual_seed(0)
    lin = nn.Linear(84, 10)
    x = torch.randn(32, 84)
    assert torch.equal(tau_normalized(lin, 0.0)(x), lin(x))


def test_tau_is_the_argmax_of_validation_accuracy_over_the_grid():
    """Weights w_0 = (4, 0) (norm 4), w_1 = (0, 1) (norm 1), no bias. For a feature (1, c): z_0 = 4 / 4^tau =
    4^(1 - tau), z_1 = c, so class 1 wins iff tau > 1 - log_4 c. Sample A (class 1) has c = 4^0.35: right iff
    tau > 0.65; sample B (class 0) has c = 4^0.25: right iff tau < 0.75. Balanced accuracy (one sample per class):
    50 for tau <= 0.6 (A wrong), 100 at tau = 0.7, 50 for tau >= 0.8 (B wrong): the argmax is 0.7."""
    lin = _linear([[4.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    feats = torch.tensor([[1.0, 4 ** 0.35], [1.0, 4 ** 0.25]])
    labels = torch.tensor([1, 0])
    tau, accs = choose_tau(feats, labels, lin, TAU_GRID)
    assert TAU_GRID == pytest.approx([i / 10 for i in range(21)])
    assert tau == pytest.approx(0.7)
    assert accs == [50.0] * 7 + [100.0] + [50.0] * 13
    # ties go to the first tau of the grid: only sample B (class 0), right for every tau < 0.75
    tau, accs = choose_tau(feats[1:], labels[1:], lin, TAU_GRID, num_classes=2)
    assert tau == 0.0 and accs == [50.0] * 8 + [0.0] * 13


def test_lws_with_unit_scales_reproduces_the_source_logits_exactly():
    torch.manual_seed(0)
    source = LeNet5(2).eval()
    x = torch.randn(16, 1, 28, 28)
    features, linear = split_classifier(copy.deepcopy(source))
    net = Decoupled(features, ScaledLinear(linear)).eval()
    assert net.head.scales.tolist() == [1.0, 1.0]
    assert torch.equal(net(x), source(x))
    assert [n for n, p in net.named_parameters() if p.requires_grad] == ["head.scales"]


def test_crt_changes_only_the_classifier(tmp_path):
    """A BatchNorm network (ResNet-32 with one block per stage): cRT trains 4 steps with class-balanced sampling;
    every feature weight and BatchNorm statistic stays bit-identical, the classifier moves from its fresh init."""
    from cdb.data.base import DatasetSplits, TensorSplit
    from cdb.losses import build_criterion
    from cdb.models.resnet_cifar import resnet32
    from cdb.train.config import TrainerConfig
    from cdb.train.loop import train_alone
    from cdb.train.run import RunState

    torch.manual_seed(0)
    source = resnet32(num_classes=2, in_channels=3, blocks=1)
    g = torch.Generator().manual_seed(0)
    split = TensorSplit(torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8, generator=g),
                        (torch.arange(40) < 32).long())
    data = DatasetSplits("t", split, split, split, 2, ["a", "b"], (3, 16, 16), (0.5,) * 3, (0.25,) * 3)
    features, old = split_classifier(copy.deepcopy(source))
    torch.manual_seed(1)
    head = nn.Linear(old.in_features, old.out_features)
    init = copy.deepcopy(head.state_dict())
    cfg = TrainerConfig(unit="step", length=4, eval_every=2, batch_size=10, lr=0.1, device="cpu", progress=False,
                        sampler="class_balanced")
    state = RunState(Decoupled(features, head), data, build_criterion({"base": "ce", "weighting": "none"}, 2,
                                                                      data.class_counts), cfg, tmp_path)
    train_alone(state)
    after = state.model.state_dict()
    for name, value in source.state_dict().items():   # parameters and buffers (BatchNorm running mean / var)
        if name.startswith("fc."):
            continue
        assert torch.equal(after[f"features.{name}"], value), name
    assert any("running_mean" in n for n in source.state_dict())
    assert not torch.equal(after["head.weight"], init["weight"])
    assert set(after) == {f"features.{n}" for n in source.state_dict() if not n.startswith("fc.")} | {
        "head.weight", "head.bias"}


def test_a_model_without_a_linear_classifier_is_refused():
    with pytest.raises(CdbError, match="has no linear classifier to decouple: its last layer 'classifier.5' is a "
                                       "NormedLinear"):
        split_classifier(use_head(LeNet5(2), "cosine"), "the model")
