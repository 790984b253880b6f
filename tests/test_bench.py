"""scripts/bench.py: the FLOP count behind its GFLOP/s column (by hand from LeNet-5's layer sizes), the
reference CDB epoch's weights, and the report it writes from measured cases."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("cdb_bench", REPO / "scripts" / "bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_lenet_training_flops_by_hand(bench):
    out = bench.case_flops(None, None)
    # multiply-adds x 2 per image. conv1: 6 maps of 28x28, 1x5x5 taps; conv2: 16 maps of 10x10, 6x5x5 taps;
    # fc 400-120-84-2. Backward: conv1 weight gradient only (the image needs none), conv2 weight and input
    # gradients, every linear layer weight and input gradient.
    conv1, conv2 = 2 * 6 * 28 * 28 * 25, 2 * 16 * 10 * 10 * 150
    fc = 2 * (400 * 120 + 120 * 84 + 84 * 2)
    per_image = (conv1 + conv2 + fc) + (conv1 + 2 * conv2) + 2 * fc
    assert out["train_flops_per_image"]["lenet"] == per_image == 2_259_888
    assert out["sgemm_gflops"] > 0


def test_reference_epoch_sets_cdb_weights_from_validation(bench):
    class Const(torch.nn.Module):   # predicts class 0 for everything: class-wise accuracy (1, 0)
        def __init__(self):
            super().__init__()
            self.b = torch.nn.Parameter(torch.tensor([5.0, -5.0]))

        def forward(self, x):
            return self.b.expand(len(x), 2)

    ds = [(torch.zeros(1), i % 2) for i in range(8)]
    model = Const()
    run = bench._reference_epochs(model, ds, ds, 4, torch.device("cpu"), 2, 2.0, 0)
    run(1)
    assert run.state["w"].tolist() == [0.0, 1.0]    # (1 - acc_c)^tau with acc = (1, 0)


def test_report_ratios_and_efficiency(bench):
    cases = [
        {"case": "flops", "threads": 2, "device": "cpu", "images_per_s": 0.0, "sgemm_gflops": 100.0,
         "train_flops_per_image": {"lenet": 2e6, "resnet32": 1e8}, "peak_rss_mib": 1.0},
        {"case": "lenet/reference", "threads": 2, "device": "cpu", "images_per_s": 5000.0, "step_ms": 20.0,
         "peak_rss_mib": 700.0, "data": "real"},
        {"case": "lenet/trainer", "threads": 2, "device": "cpu", "images_per_s": 15000.0, "step_ms": 6.7,
         "peak_rss_mib": 700.0, "data": "real"},
    ]
    assert bench._ratio(cases, "lenet/trainer", "lenet/reference", 2) == pytest.approx(3.0)
    report = {"command": "make bench", "date": "d", "wall_s": 1.0, "machine": {"cpu": "c", "cores": 2, "torch": "t",
              "gpu": None}, "load_average_before": [0, 0, 0], "load_average_after": [0, 0, 0],
              "settings": {"workers": 0, "rounds": 3}, "ratios": {"lenet: trainer / reference": 3.0}, "cases": cases}
    md = bench._markdown(report)
    assert "| lenet: trainer / reference | 3.00x |" in md
    assert "| lenet/trainer | 2 | cpu | 15000.0 | 6.7 | 30.0 | 30 |" in md   # 15000 images/s x 2 MFLOP = 30 GFLOP/s
    assert "100.0 GFLOP/s in this run" in md and "3 interleaved rounds" in md


def test_whole_cifar_lt_run_on_small_synthetic_data(bench, tmp_path):
    """The GPU timing mode (`--cifar-lt-run 200`) runs the real trainer end to end; here 2 epochs on a small
    long-tailed set (12 -> 1 images per class) to check it completes and reports what it ran."""
    from cdb.data.longtail import longtail_counts

    data = bench.synthetic_cifar_lt(imbalance=10, n_max=12, val_per_class=1, test_per_class=1)
    counts = longtail_counts(12, 100, 10)
    assert counts[0] == 12 and counts[-1] == 1 and data.class_counts.tolist() == counts
    r = bench.cifar_lt_run(2, "cpu", tmp_path / "run", data=data, channels_last=True)
    assert r["epochs"] == 2 and r["train_images"] == sum(counts) and r["wall_s"] > 0
    assert 0.0 <= r["test_error"] <= 100.0
    assert (tmp_path / "run" / "metrics.json").exists() and (tmp_path / "run" / "checkpoints" / "last.pt").exists()
