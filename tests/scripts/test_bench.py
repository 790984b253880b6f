"""scripts/bench.py: the FLOP count behind its GFLOP/s column (by hand from LeNet-5's layer sizes), the rule that
picks the default pack size, the report it writes (LeNet-5; Ren et al.'s LeNet and ResNet-32 in a tiny case), and the
whole-run CIFAR-100-LT timing on a small set."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from helpers import REPO


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("cdb_bench", REPO / "scripts" / "bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_lenet_training_flops_by_hand(bench):
    # multiply-adds x 2 per image. conv1: 6 maps of 28x28, 1x5x5 taps; conv2: 16 maps of 10x10, 6x5x5 taps;
    # fc 400-120-84-2. Backward: conv1 weight gradient only (the image needs none), conv2 weight and input
    # gradients, every linear layer weight and input gradient.
    conv1, conv2 = 2 * 6 * 28 * 28 * 25, 2 * 16 * 10 * 10 * 150
    fc = 2 * (400 * 120 + 120 * 84 + 84 * 2)
    per_image = (conv1 + conv2 + fc) + (conv1 + 2 * conv2) + 2 * fc
    assert bench.lenet_train_flops() == per_image == 2_259_888


def test_rechoose_records_the_best_measured_pack_and_layout(bench, tmp_path, monkeypatch):
    """`--rechoose` reads a bench result (made-up, consistent figures), times nothing, and writes the choice of
    cdb.launch.defaults into the result and into the record pack=auto reads (here a temporary one)."""
    import cdb.launch.defaults as D

    steps = {("channels_first", 1): 40.0, ("channels_first", 4): 200.0, ("channels_last", 1): 38.0,
             ("channels_last", 2): 32.0, ("channels_last", 4): 70.0}
    cases = [{"model": "lenet5", "batch": 100, "k": k, "layout": lay, "step_ms": ms, "images_per_s_per_run": 1.0,
              "per_run_speedup": k * steps[(lay, 1)] / ms, "gflops": 1.0, "pct_sgemm": 1.0}
             for (lay, k), ms in steps.items()]
    (tmp_path / "b.json").write_text(json.dumps({
        "command": "x", "date": "2026-01-02T03:04:05", "wall_s": 1.0, "machine": "m", "torch": "t", "device_type": "cpu",
        "load_before": [0], "load_after": [0], "note": "", "sgemm_gflops": 10.0, "train_flops_per_image": 2259888,
        "cases": cases, "compare": "", "default_pack": {}}))
    record = tmp_path / "pack_defaults.json"
    old_ren = {"pack": 4, "layout": "channels_last", "speedup": 1.5, "bench": "old"}
    record.write_text(json.dumps({"cuda": {"models": {}, "layouts": {}},
                                  "cpu": {"models": {"lenet_ren": old_ren}, "layouts": {"lenet_ren": {}}}}))
    monkeypatch.setattr(D, "RECORD", record)
    bench.main(["--rechoose", "--out", str(tmp_path / "b")])
    # against one run alone in channels-first (40 ms): K=4 CF 0.80x, K=2 CL 2.50x, K=4 CL 4 x 40 / 70 = 2.29x
    table = json.loads(record.read_text())
    assert table["cpu"]["models"]["lenet5"] == {"pack": 2, "layout": "channels_last", "speedup": 2.5,
                                                "bench": "2026-01-02T03:04:05"}
    assert table["cpu"]["models"]["lenet_ren"] == old_ren                       # a model not timed again: kept
    assert table["cuda"] == {"models": {}, "layouts": {}}                      # other devices kept
    assert json.loads((tmp_path / "b.json").read_text())["default_pack"]["models"] == {
        "lenet5": table["cpu"]["models"]["lenet5"]}
    assert "2 runs a pack, channels-last, 2.50x per run in make bench of 2026-01-02T03:04:05" in \
        (tmp_path / "b.md").read_text()


def test_quick_bench_reports_every_k_with_its_speedup_and_sgemm_share(bench, tmp_path):
    defaults = (REPO / "cdb" / "launch" / "pack_defaults.json").read_text()
    bench.main(["--quick", "--device", "cpu", "--out", str(tmp_path / "b")])
    r = json.loads((tmp_path / "b.json").read_text())
    assert [(c["k"], c["layout"]) for c in r["cases"]] == [(1, "channels_first"), (2, "channels_first"),
                                                           (1, "channels_last"), (2, "channels_last")]
    for c in r["cases"]:
        # images/s of the pack (100 images per run per step) x FLOPs per image, against the measured sgemm rate
        assert c["gflops"] == pytest.approx(100 * c["k"] / (c["step_ms"] / 1e3) * 2_259_888 / 1e9)
        assert c["pct_sgemm"] == pytest.approx(100 * c["gflops"] / r["sgemm_gflops"])
    one = {c["layout"]: c["step_ms"] for c in r["cases"] if c["k"] == 1}
    for c in r["cases"]:
        assert c["per_run_speedup"] == pytest.approx(c["k"] * one[c["layout"]] / c["step_ms"])
    assert "| 2 | channels_last |" in (tmp_path / "b.md").read_text()
    assert (REPO / "cdb" / "launch" / "pack_defaults.json").read_text() == defaults  # --quick records nothing


def test_quick_bench_of_ren_lenet_and_resnet32_packs(bench, tmp_path):
    """make bench times Ren et al.'s LeNet and ResNet-32 packs too (here their tiny case: K = 1, 2, ResNet-32 at 4
    images a step): each model's speed-up against its own pack of one, its own FLOPs per image, a default per model."""
    defaults = (REPO / "cdb" / "launch" / "pack_defaults.json").read_text()
    bench.main(["--quick", "--device", "cpu", "--models", "lenet_ren", "resnet32", "--out", str(tmp_path / "b")])
    r = json.loads((tmp_path / "b.json").read_text())
    assert [(c["model"], c["k"], c["layout"]) for c in r["cases"]] == [
        (m, k, layout) for m in ("lenet_ren", "resnet32") for layout in ("channels_first", "channels_last")
        for k in (1, 2)]
    flops = r["train_flops_per_image_of"]
    # ResNet-32 on 32x32 (100 classes) costs far more than Ren's LeNet on 28x28 (~69 MFLOP forward alone)
    assert flops["resnet32"] > 3 * 69e6 > flops["lenet_ren"] > 0
    for c in r["cases"]:
        assert c["batch"] == {"lenet_ren": 100, "resnet32": 4}[c["model"]]
        assert c["gflops"] == pytest.approx(c["batch"] * c["k"] / (c["step_ms"] / 1e3) * flops[c["model"]] / 1e9)
        assert c["pct_sgemm"] == pytest.approx(100 * c["gflops"] / r["sgemm_gflops"])
        one = next(o for o in r["cases"] if (o["model"], o["layout"], o["k"]) == (c["model"], c["layout"], 1))
        assert c["per_run_speedup"] == pytest.approx(c["k"] * one["step_ms"] / c["step_ms"])
    assert set(r["default_pack"]["models"]) == set(r["default_pack"]["layouts"]) == {"lenet_ren", "resnet32"}
    md = (tmp_path / "b.md").read_text()
    assert "| ResNet-32 | 4 | 2 | channels_last |" in md and "- ResNet-32 (model=resnet32): **" in md
    assert (REPO / "cdb" / "launch" / "pack_defaults.json").read_text() == defaults  # --quick records nothing


def test_whole_cifar_lt_run_on_small_synthetic_data(bench, tmp_path):
    """The GPU timing mode (`--cifar-lt-run 200`) runs the real trainer end to end; here 2 epochs on a small
    long-tailed set (12 -> 1 images per class) to check it completes and reports what it ran."""
    data = bench.synthetic_cifar_lt(imbalance=10, n_max=12, val_per_class=1, test_per_class=1)
    # Cui et al.'s profile, n_c = floor(12 * (1/10)^(c/99)): 12 images in class 0 down to 1 in class 99
    expected = [int(12 * 0.1 ** (c / 99)) for c in range(100)]
    assert expected[0] == 12 and expected[-1] == 1 and sum(expected) == 422
    assert data.class_counts.tolist() == expected
    r = bench.cifar_lt_run(2, "cpu", tmp_path / "run", data=data, channels_last=True)
    assert r["epochs"] == 2 and r["train_images"] == 422 and r["wall_s"] > 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    cm = torch.tensor(m["checkpoints"]["last"]["test_confusion"])
    assert cm.sum() == 100  # one test image per class
    assert r["test_error"] == pytest.approx(100.0 * (1 - cm.trace().item() / 100))
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_tau_sweep_times_a_pack_against_one_run_alone(bench, tmp_path):
    """`--cifar-lt-sweep` (gpu_check.sh's packed Table 4 sweep) trains the tau values as one pack and one run alone,
    end to end; `--quick`: 2 tau, 1 epoch on a 422-image long-tailed set. Per-run speed-up = runs x (alone's time per
    epoch) / (the pack's)."""
    bench.main(["--cifar-lt-sweep", "1", "--quick", "--device", "cpu", "--out", str(tmp_path / "s")])
    r = json.loads((tmp_path / "s.json").read_text())
    assert r["taus"] == ["0.0", "dynamic"] and r["train_images"] == 422 and r["imbalance"] == 10
    assert (r["pack"]["runs"], r["alone"]["runs"]) == (2, 1)
    for part in ("pack", "alone"):
        p = r[part]
        assert p["epochs_done"] == 1 and not p["stopped_at_limit"] and p["whole_s"] == p["wall_s"] > 0
        assert 0 < p["per_epoch_s"] <= p["wall_s"]
    assert r["per_run_speedup"] == pytest.approx(2 * r["alone"]["per_epoch_s"] / r["pack"]["per_epoch_s"])
    md = (tmp_path / "s.md").read_text()
    assert "| pack (tau 0.0, dynamic) | 2 | 1 |" in md and f"**{r['per_run_speedup']:.2f}x**" in md


def test_tau_sweep_stops_at_its_time_limit_and_extrapolates(bench, tmp_path):
    data = bench.synthetic_cifar_lt(imbalance=10, n_max=12, val_per_class=1, test_per_class=1)
    t = __import__("time").perf_counter()
    r = bench.cifar_lt_sweep(200, "cpu", limit_s=3, imbalance=10, taus=(0.0, "dynamic"), data=data,
                             channels_last=True)
    assert __import__("time").perf_counter() - t < 2 * 3 + 30  # two limits, the setup, the runs' last checkpoint
    for part in ("pack", "alone"):
        p = r[part]
        assert p["stopped_at_limit"] and p["epochs_done"] < 200 and 3 <= p["wall_s"] < 3 + 15
        if p["epochs_done"]:  # under load maybe none: then nothing is extrapolated
            assert p["whole_s"] == pytest.approx(p["first_epoch_s"] + 199 * p["per_epoch_s"])
        else:
            assert p["whole_s"] is None and p["per_epoch_s"] is None
