"""LeNet-5: its shape and parameter count, and its conv-pool-ReLU order computing exactly what the textbook
conv-ReLU-pool computes."""
import torch

from cdb.models import build_model


def test_lenet5_shape_and_parameter_count():
    m = build_model("lenet5", 2, (1, 28, 28))
    assert m(torch.zeros(4, 1, 28, 28)).shape == (4, 2)
    # conv1 1*6*25+6, conv2 6*16*25+16, fc 400*120+120, 120*84+84, 84*2+2 (LeCun 1998 layer sizes)
    expected = (1 * 6 * 25 + 6) + (6 * 16 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 2 + 2)
    assert sum(p.numel() for p in m.parameters()) == expected == 61026


def test_lenet5_pool_then_relu_is_the_textbook_conv_relu_pool():
    """LeNet5 runs conv-pool-ReLU (cheaper); outputs and every gradient equal the textbook conv-ReLU-pool
    order exactly, including windows with tied or all-negative values (flat image background)."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    m = build_model("lenet5", 2, (1, 28, 28))
    x = torch.randn(16, 1, 28, 28)
    x[:, :, :8] = -0.4242                     # a flat band: every window there is a tie
    x[::2] = x[::2].clamp_min(-0.4242)
    y = torch.randint(0, 2, (16,))

    def textbook(p):
        h = F.max_pool2d(F.relu(F.conv2d(x, p["features.0.weight"], p["features.0.bias"], padding=2)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p["features.3.weight"], p["features.3.bias"])), 2).flatten(1)
        h = F.relu(F.linear(h, p["classifier.1.weight"], p["classifier.1.bias"]))
        h = F.relu(F.linear(h, p["classifier.3.weight"], p["classifier.3.bias"]))
        return F.linear(h, p["classifier.5.weight"], p["classifier.5.bias"])

    params = dict(m.named_parameters())
    out_ref = textbook(params)
    grads_ref = torch.autograd.grad(F.cross_entropy(out_ref, y), list(params.values()))
    out = m(x)
    grads = torch.autograd.grad(F.cross_entropy(out, y), list(params.values()))
    assert torch.equal(out, out_ref)
    for g, g_ref in zip(grads, grads_ref):
        assert torch.equal(g, g_ref)
