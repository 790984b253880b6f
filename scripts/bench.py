"""Speed benchmark: packs of K runs (LeNet-5, Ren et al.'s LeNet, ResNet-32) against K runs one after another,
and a whole CIFAR-100-LT run.

    make bench                 # results/bench.md, .json, all three models; records the default pack size per device
    python scripts/bench.py --out results/bench [--threads 1] [--device auto] [--k 1 2 4 ...] [--quick]
                            [--models lenet5 lenet_ren resnet32] [--batch resnet32=32]
    make bench-cifar-lt        # python scripts/bench.py --cifar-lt-run 200 --out results/bench_cifar_lt
    python scripts/bench.py --cifar-lt-sweep 200 [--time-limit S] --out results/cifar_lt_sweep
                               # Table 4's 7 tau at imbalance 100 as one pack against one run alone (for a GPU)

Pack cases time cdb's own loop (cdb.train.loop.train_units: batches gathered and normalised per run,
the packed forward, each run's CDB-weighted loss, backward, one SGD step) on uint8 tensors of the model's data
(MNIST-shaped for the LeNets, CIFAR-100-shaped for ResNet-32), with torch.utils.benchmark
(Timer.blocked_autorange; Compare prints the table). Per-run speed-up of a pack
of K = K x (time of one step of a pack of one) / (time of one step of the pack of K): above 1 the pack
trains each run faster than running the K runs one after another. GFLOP/s uses the step's FLOPs counted
by torch.utils.flop_counter; % of sgemm compares with a 1024^3 float32 matrix product timed in the same run.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.utils.benchmark as benchmark

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(REPO / "scripts"))
from bench_cifar_lt import CIFAR_MEAN, CIFAR_STD, cifar_lt_run, cifar_lt_sweep, synthetic_cifar_lt  # noqa: E402,F401
from cdb.train.config import resolve_device  # noqa: E402  (after the path insert: the checkout's cdb)

LAYOUTS = {"channels_first": False, "channels_last": True}
# model -> (input shape, classes, images per run per step). ResNet-32 at 32 images a step, not CIFAR's 128: a
# pack of 64 at 128 would hold ~20 GB of activations for the backward pass (2.4 MB an image)
MODELS = {"lenet5": ((1, 28, 28), 2, 100), "lenet_ren": ((1, 28, 28), 2, 100), "resnet32": ((3, 32, 32), 100, 32)}
QUICK_BATCH = {"resnet32": 4}  # --quick: a tiny ResNet-32 case (the tests)


# ---- what one step costs ----------------------------------------------------------------------------------
def train_flops(name: str = "lenet5") -> int:
    """FLOPs of one image's training step (forward, backward) of a bench model, as torch.utils.flop_counter counts
    them (its data's image shape and classes)."""
    from torch.utils.flop_counter import FlopCounterMode

    from cdb.models import build_model

    shape, classes, _ = MODELS[name]
    model, x = build_model(name, classes, shape), torch.randn(10, *shape)
    with FlopCounterMode(display=False) as fc:
        model(x).sum().backward()
    return fc.get_total_flops() // 10


def lenet_train_flops(num_classes: int = 2) -> int:
    """FLOPs of one image's LeNet-5 training step (forward, backward), as torch.utils.flop_counter counts them."""
    return train_flops("lenet5")


def sgemm_gflops(device: torch.device, n: int = 1024, min_run_time: float = 1.0) -> float:
    """This machine's float32 matrix-product rate (GFLOP/s) at the current thread count."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    m = benchmark.Timer("torch.mm(a, b)", globals={"a": a, "b": b, "torch": torch}, label="sgemm",
                        num_threads=torch.get_num_threads()).blocked_autorange(min_run_time=min_run_time)
    return 2 * n**3 / m.median / 1e9


# ---- a pack of K runs of one model ------------------------------------------------------------------------
def mnist_shaped(n: int = 5000, seed: int = 0):
    """Random uint8 28x28 images with two labels: a training split the size of the protocol's (5000)."""
    from cdb.data.base import DatasetSplits, TensorSplit

    g = torch.Generator().manual_seed(seed)
    split = TensorSplit(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
                        torch.randint(0, 2, (n,), generator=g))
    return DatasetSplits("mnist_shaped", split, split, split, 2, ["4", "9"], (1, 28, 28), (0.1307,), (0.3081,))


def cifar_shaped(n: int = 5000, seed: int = 0):
    """Random uint8 3x32x32 images with 100 labels (CIFAR-100's shape; the long-tailed profile does not change a
    step's cost), cropped and flipped as CIFAR training batches are."""
    from cdb.data.base import DatasetSplits, TensorSplit

    g = torch.Generator().manual_seed(seed)
    split = TensorSplit(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                        torch.randint(0, 100, (n,), generator=g))
    return DatasetSplits("cifar_shaped", split, split, split, 100, [str(i) for i in range(100)], (3, 32, 32),
                         CIFAR_MEAN, CIFAR_STD, augment="crop_flip")


def model_pack(name: str, k: int, device: str, tmp: str, channels_last: bool = False, batch: int | None = None,
               compile: bool = False):
    """k runs of a bench model with CDB-CE weights (non-uniform, so the weighted loss runs), seeds 0..k-1, each built
    from its seed as cdb.build builds it, assembled for the loop (cdb.train.loop.assemble: alone, or a pack)."""
    from cdb.losses import build_criterion
    from cdb.models import build_model
    from cdb.train.loop import assemble
    from cdb.train.run import RunState
    from cdb.train.config import TrainerConfig

    shape, classes, default_batch = MODELS[name]
    data = mnist_shaped() if shape[0] == 1 else cifar_shaped()
    cfg = TrainerConfig(unit="step", length=10**9, batch_size=batch or default_batch, lr=1e-3, device=device,
                        progress=False, channels_last=channels_last, compile=compile)
    acc = torch.linspace(0.99, 0.6, classes)
    runs = []
    for s in range(k):
        torch.manual_seed(s)
        model = build_model(name, classes, shape)
        crit = build_criterion({"base": "ce", "weighting": "cdb", "tau": "dynamic"}, classes, data.class_counts)
        crit.weighting.update(0, acc)
        runs.append(RunState(model, data, crit, cfg, Path(tmp) / f"run{s}", seed=s))
    return assemble(runs)


def time_pack(k: int, device: str, channels_last: bool, min_run_time: float, steps: int = 2, model: str = "lenet5",
              batch: int | None = None, compile: bool = False) -> benchmark.Measurement:
    """Time `steps` training steps of a pack of k (after as many of warm-up; compile: trainer.compile=true)."""
    from cdb.train.loop import train_units

    with tempfile.TemporaryDirectory() as tmp:
        pack = model_pack(model, k, device, tmp, channels_last, batch, compile)
        state = {"u": 0}

        def run():
            train_units(pack, state["u"], state["u"] + steps)
            state["u"] += steps
        run()
        layout = "channels_last" if channels_last else "channels_first"
        return benchmark.Timer("run()", globals={"run": run}, label=f"{model} pack step", sub_label=f"K={k:>3}",
                               description=layout, num_threads=torch.get_num_threads()
                               ).blocked_autorange(min_run_time=min_run_time)


def pack_cases(ks, device, min_run_time, steps=2, models=("lenet5",), batches=None
               ) -> tuple[list[dict], list[benchmark.Measurement], dict]:
    """Every (model, layout, K) case: its step time, per-run speed-up against the pack of one of that model and
    layout, and share of the sgemm rate."""
    batches = {m: (batches or {}).get(m) or MODELS[m][2] for m in models}
    flops = {m: train_flops(m) for m in models}
    rows, measurements = [], []
    dev = resolve_device(device)
    peak = sgemm_gflops(dev, min_run_time=min_run_time)
    tf32 = None
    if dev.type == "cuda":  # the GPU's TF32 rate too (tensor cores, what channels of a conv may use)
        before = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        tf32 = sgemm_gflops(dev, n=8192, min_run_time=min_run_time)
        torch.backends.cuda.matmul.allow_tf32 = before
    for model in models:
        batch, f = batches[model], flops[model]
        for layout, cl in LAYOUTS.items():
            base = None
            for k in ks:
                m = time_pack(k, str(dev), cl, min_run_time, steps, model, batch)
                measurements.append(m)
                step_s = m.median / steps
                base = step_s if k == 1 else base
                ips = batch * k / step_s
                rows.append({"model": model, "batch": batch, "k": k, "layout": layout, "step_ms": 1e3 * step_s,
                             "images_per_s_per_run": ips / k, "per_run_speedup": k * base / step_s if base else None,
                             "flops_per_image": f, "gflops": ips * f / 1e9, "pct_sgemm": 100 * ips * f / 1e9 / peak,
                             **({"pct_tf32": 100 * ips * f / 1e9 / tf32} if tf32 else {})})
                print(f"  {model:9s} {layout:15s} K={k:3d}: {1e3 * step_s:8.2f} ms/step, {ips / k:8.0f} images/s per "
                      f"run, x{rows[-1]['per_run_speedup'] or 0:.2f} per run, {rows[-1]['pct_sgemm']:.0f}% of sgemm",
                      flush=True)
    # train_flops_per_image: the first model's (LeNet-5's in the default bench), as before; every case has its own
    return rows, measurements, {"sgemm_gflops": peak, "tf32_gflops": tf32, "train_flops_per_image": flops[models[0]],
                                "train_flops_per_image_of": flops}


def default_packs(rows: list[dict], device_type: str, date: str = "?") -> dict:
    """The device's entry of pack_defaults.json: per model, the pack size and layout with the best per-run speed-up
    against a run alone (cdb.launch.defaults.choose: the rule pack=auto applies)."""
    from cdb.launch.defaults import record_entry

    return record_entry({"cases": rows, "date": date})


def parse_batches(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, _, n = item.partition("=")
        if name not in MODELS or not n.isdigit() or int(n) < 1:
            raise SystemExit(f"bench.py: error: --batch {item!r}: MODEL=N with MODEL in {sorted(MODELS)}, N >= 1")
        out[name] = int(n)
    return out


# ---- one run against a bare PyTorch loop ------------------------------------------------------------------
def bare_loop(name: str, device: str, channels_last: bool = False, batch: int | None = None):
    """A hand-written loop of one run, the same network, optimizer (SGD, lr 1e-3, momentum 0.9), batches (the
    (seed, step) stream of cdb.train.batches), normalisation, CDB-weighted cross-entropy and validation (1000 images
    a forward, confusion counts) as cdb's pack of one in model_pack: (step(u), validate())."""
    import torch.nn.functional as F

    from cdb.models import build_model
    from cdb.train.batches import unit_batches

    shape, classes, default_batch = MODELS[name]
    batch = batch or default_batch
    data = mnist_shaped() if shape[0] == 1 else cifar_shaped()
    dev = torch.device(device)
    torch.manual_seed(0)
    model = build_model(name, classes, shape).to(dev)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x, y = data.train.x.to(dev), data.train.y.to(dev)
    vx, vy = data.val.x.to(dev), data.val.y.to(dev)
    mean = torch.tensor(data.mean, device=dev).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=dev).view(1, -1, 1, 1)
    w = torch.linspace(0.5, 1.5, classes, device=dev)

    def step(u: int) -> None:
        idx = unit_batches(len(x), batch, "step", u, 0)[0].to(dev)
        xb = ((x[idx].float() / 255 - mean) / std).contiguous(memory_format=fmt)
        yb = y[idx]
        loss = (F.cross_entropy(model(xb), yb, reduction="none") * w[yb]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def validate() -> torch.Tensor:
        model.eval()
        cm = torch.zeros(classes * classes, dtype=torch.long, device=dev)
        for i in range(0, len(vx), 1000):
            z = model(((vx[i: i + 1000].float() / 255 - mean) / std).contiguous(memory_format=fmt))
            cm.index_add_(0, vy[i: i + 1000] * classes + z.argmax(1), torch.ones_like(vy[i: i + 1000]))
        model.train()
        return cm
    return step, validate


def bare_cases(models, device: str, min_run_time: float, rounds: int = 3, batches=None) -> list[dict]:
    """Per model (channels-first): a training step and a validation of one run through cdb (the run alone:
    cdb.train.loop.train_units, RunState.validate) against bare_loop, timed in alternate A/B pairs (`rounds` of each, medians)."""
    from cdb.train.loop import train_units

    rows = []
    for name in models:
        batch = (batches or {}).get(name)
        with tempfile.TemporaryDirectory() as tmp:
            pack = model_pack(name, 1, device, tmp, False, batch)
            t = pack.runs[0]
            state = {"u": 0, "b": 0}
            bare_step, bare_val = bare_loop(name, device, False, batch)

            def cdb_step():
                train_units(pack, state["u"], state["u"] + 1)
                state["u"] += 1

            def bare():
                bare_step(state["b"])
                state["b"] += 1
            fns = {"cdb step": cdb_step, "bare step": bare, "cdb validation": lambda: t.validate(t.data.val),
                   "bare validation": bare_val}
            for f in fns.values():
                f()  # warm-up
            got = {k: [] for k in fns}
            for _ in range(rounds):
                for k, f in fns.items():  # A, B, A, B: each pair under the same load
                    got[k].append(benchmark.Timer("f()", globals={"f": f}, num_threads=torch.get_num_threads()
                                                  ).blocked_autorange(min_run_time=min_run_time).median)
        med = {k: sorted(v)[len(v) // 2] for k, v in got.items()}
        row = {"model": name, "step_ms": 1e3 * med["cdb step"], "bare_step_ms": 1e3 * med["bare step"],
               "val_ms": 1e3 * med["cdb validation"], "bare_val_ms": 1e3 * med["bare validation"],
               "step_ratio": med["cdb step"] / med["bare step"], "val_ratio": med["cdb validation"] / med["bare validation"]}
        print(f"  {name:9s} one run against a bare loop: step {row['step_ms']:.2f} / {row['bare_step_ms']:.2f} ms "
              f"(x{row['step_ratio']:.2f}), validation {row['val_ms']:.1f} / {row['bare_val_ms']:.1f} ms "
              f"(x{row['val_ratio']:.2f})", flush=True)
        rows.append(row)
    return rows


def compile_cases(ks, models, device: str, min_run_time: float, rounds: int = 2) -> list[dict]:
    """trainer.compile=true against eager, per model (channels-first) and K: step time of each, in alternate pairs
    (the faster of `rounds`); the first compiled steps (compilation) are the warm-up and are not counted."""
    rows = []
    for model in models:
        for k in ks:
            got: dict[bool, list[float]] = {False: [], True: []}
            t0 = time.time()
            for r in range(rounds):
                for c in ((False, True) if r % 2 == 0 else (True, False)):
                    got[c].append(time_pack(k, device, False, min_run_time, 2, model, compile=c).median / 2)
            eager, comp = min(got[False]), min(got[True])
            rows.append({"model": model, "k": k, "eager_ms": 1e3 * eager, "compiled_ms": 1e3 * comp,
                         "speedup": eager / comp, "wall_s": time.time() - t0})
            print(f"  {model} K={k:3d}: eager {1e3 * eager:.2f} ms, compiled {1e3 * comp:.2f} ms per step "
                  f"(x{eager / comp:.2f})", flush=True)
    return rows


# ---- the allocator: per-run step time against K with glibc's default and with cdb.train.heap ----------------
def heap_cases(ks, model: str, device: str, min_run_time: float, rounds: int = 2) -> list[dict]:
    """Per-run step time of packs of K (channels-first) with CDB_KEEP_HEAP=0 (glibc's default) and =1 (what cdb-run
    does), each case in a fresh process (mallopt is per process), the two settings alternately (A/B, B/A, ...)."""
    import subprocess

    got: dict[tuple[int, str], list[float]] = {}
    for r in range(rounds):
        for k in ks:
            for keep in (("0", "1") if r % 2 == 0 else ("1", "0")):
                env = {**os.environ, "CDB_KEEP_HEAP": keep}
                out = subprocess.run([sys.executable, __file__, "--child", model, str(k), device, str(min_run_time)],
                                     env=env, capture_output=True, text=True, check=True)
                ms = json.loads(out.stdout.strip().splitlines()[-1])["step_ms"]
                got.setdefault((k, keep), []).append(ms)
                print(f"  {model} K={k:3d} CDB_KEEP_HEAP={keep}: {ms / k:8.2f} ms per run per step", flush=True)
    rows = []
    for k in ks:
        before, after = (min(got[(k, v)]) / k for v in ("0", "1"))  # the least disturbed of the rounds
        rows.append({"model": model, "k": k, "per_run_ms_before": before, "per_run_ms_after": after})
    for row in rows:
        row["vs_k1_before"] = row["per_run_ms_before"] / rows[0]["per_run_ms_before"]
        row["vs_k1_after"] = row["per_run_ms_after"] / rows[0]["per_run_ms_after"]
    return rows


def _child(model: str, k: int, device: str, min_run_time: float) -> None:
    """--child: one pack case in this process, its step time as a JSON line (heap_cases)."""
    from cdb.train.heap import keep_heap

    keep_heap()
    torch.set_num_threads(1)
    m = time_pack(k, device, False, min_run_time, 2, model)
    print(json.dumps({"step_ms": 1e3 * m.median / 2, "heap": keep_heap()}))


# ---- the driver ------------------------------------------------------------------------------------------
def _out_path(out: str) -> Path:
    path = Path(out) if Path(out).is_absolute() else REPO / out
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or "cpu"
    try:
        name = next(x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines()
                    if x.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


NAMES = {"lenet5": "LeNet-5", "lenet_ren": "Ren et al.'s LeNet", "resnet32": "ResNet-32"}


def markdown(r: dict) -> str:
    from cdb.launch.defaults import RESOLUTION, describe

    models = list(dict.fromkeys(c.get("model", "lenet5") for c in r["cases"]))
    flops = r.get("train_flops_per_image_of") or {"lenet5": r["train_flops_per_image"]}
    several = len(models) > 1
    lines = [f"# Speed: {', '.join(NAMES[m] for m in models)} packs of K runs against K runs one after another", "",
             f"Command: `{r['command']}` ({r['date']}, {r['wall_s']:.0f} s). Machine: {r['machine']}; torch "
             f"{r['torch']}. Load average before/after: {r['load_before']} / {r['load_after']}. {r['note']}", "",
             f"sgemm (1024^3 float32) in this run: {r['sgemm_gflops']:.1f} GFLOP/s; one training step of one image: "
             + "; ".join(f"{NAMES[m]} {flops[m] / 1e6:.2f} MFLOP" for m in models) + " (torch.utils.flop_counter)."
             + (f" TF32 matrix product (8192^3): {r['tf32_gflops']:.0f} GFLOP/s." if r.get("tf32_gflops") else ""), "",
             ("| model | images per run per step " if several else "")
             + "| K | layout | ms per step | images/s per run | per-run speed-up | GFLOP/s | % of sgemm |",
             ("| --- | ---: " if several else "") + "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for c in r["cases"]:
        tf32 = f" ({c['pct_tf32']:.1f} of TF32)" if "pct_tf32" in c else ""
        lines.append((f"| {NAMES[c['model']]} | {c['batch']} " if several else "")
                     + f"| {c['k']} | {c['layout']} | {c['step_ms']:.2f} | {c['images_per_s_per_run']:.0f} | "
                     f"{c['per_run_speedup']:.2f}x | {c['gflops']:.1f} | {c['pct_sgemm']:.0f}{tf32} |")
    if r.get("bare"):
        lines += ["", "One run through cdb (alone: cdb.train.loop.train_units, RunState.validate) against a bare PyTorch "
                  "loop with the same network, optimizer, batches and validation (bench.py bare_loop), channels-first, "
                  "timed in alternate A/B pairs (medians of 3 rounds):", "",
                  "| model | cdb step (ms) | bare step (ms) | ratio | cdb validation (ms) | bare validation (ms) | ratio |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {NAMES[b['model']]} | {b['step_ms']:.2f} | {b['bare_step_ms']:.2f} | {b['step_ratio']:.2f}x | "
                  f"{b['val_ms']:.1f} | {b['bare_val_ms']:.1f} | {b['val_ratio']:.2f}x |" for b in r["bare"]]
    if r.get("heap_cases"):
        lines += ["", "Per-run step time against K, Ren et al.'s LeNet, channels-first, with glibc's default allocator "
                  "(CDB_KEEP_HEAP=0) and with cdb.train.heap (what cdb-run does), each case in its own process, the two "
                  "alternately (the faster of 2 rounds):", "",
                  "| K | per run, before (ms) | x K = 1 | per run, after (ms) | x K = 1 | after / before |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {h['k']} | {h['per_run_ms_before']:.1f} | {h['vs_k1_before']:.2f} | {h['per_run_ms_after']:.1f} | "
                  f"{h['vs_k1_after']:.2f} | {h['per_run_ms_after'] / h['per_run_ms_before']:.2f} |"
                  for h in r["heap_cases"]]
    lines += ["", f"Allocator in this run (cdb.train.heap): {r.get('heap') or 'glibc default'}."]
    lines += ["", f"pack=auto on {r['device_type']} (cdb/launch/pack_defaults.json; the rule: cdb/launch/defaults.py, "
              "the best per-run speed-up against one run alone in channels-first, K x (its step time) / (the pack's), where "
              f"figures within {100 * RESOLUTION:g} % of the best are a tie that goes to the smaller K, so a pack must measure "
              f"over {1 + RESOLUTION:.2f}x; the column above compares each layout with its own pack of one):"]
    for m, dm in r["default_pack"]["models"].items():
        lines.append(f"- {NAMES[m]} (model={m}): **{describe(dm)}**")
    if r.get("rechosen"):
        lines.append(f"- (chosen on {r['rechosen']} from this run's figures by `python scripts/bench.py --rechoose`)")
    lines += ["",
              "Per-run speed-up = K x (step time of a pack of one) / (step time of the pack of K), both timed on "
              "cdb's own loop (train_units: data, packed forward, each run's CDB-weighted loss, backward, "
              "SGD) by torch.utils.benchmark. docs/performance.md explains the limit.", "",
              "```", r["compare"], "```", ""]
    return "\n".join(lines)


def _small_lt():
    """--quick with a CIFAR-100-LT timing: 422 training images (imbalance 10, 12 down to 1 a class): seconds."""
    return synthetic_cifar_lt(10, n_max=12, val_per_class=1, test_per_class=1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="results/bench", help="writes OUT.md and OUT.json")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (sweeps run one thread per job)")
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 70])
    ap.add_argument("--bare", action="store_true", help="time one run through cdb against a bare PyTorch loop too "
                    "(same network, optimizer, batches, validation), in alternate A/B pairs")
    ap.add_argument("--heap-k", type=int, nargs="*", default=[], metavar="K",
                    help="per-run step time of Ren et al.'s LeNet packs of these K with glibc's default allocator "
                         "and with cdb.train.heap (CDB_KEEP_HEAP=0/1), each in its own process, alternately")
    ap.add_argument("--compile-k", type=int, nargs="*", default=[], metavar="K",
                    help="time trainer.compile=true against eager for packs of these K (channels-first), A/B")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--models", nargs="+", default=["lenet5"], choices=sorted(MODELS),
                    help="packed models to time (make bench: all three)")
    ap.add_argument("--batch", nargs="*", default=[], metavar="MODEL=N",
                    help="images per run per step, e.g. resnet32=128 (defaults: " +
                         ", ".join(f"{m}={b}" for m, (_, _, b) in MODELS.items()) + ")")
    ap.add_argument("--min-run-time", type=float, default=2.0, help="seconds each case is timed for, at least")
    ap.add_argument("--quick", action="store_true", help="K 1 2, short timings, no pack default written; with "
                    "--cifar-lt-run/--cifar-lt-sweep a set of 422 images (and 2 tau) (tests)")
    ap.add_argument("--note", default="", help="a line about the conditions (e.g. other load on the machine)")
    ap.add_argument("--cifar-lt-run", type=int, metavar="EPOCHS", help="time one whole CIFAR-100-LT run instead")
    ap.add_argument("--cifar-lt-sweep", type=int, metavar="EPOCHS",
                    help="time Table 4's 7 tau at imbalance 100 as one pack against one run alone instead")
    ap.add_argument("--time-limit", type=float, default=0, metavar="S",
                    help="--cifar-lt-sweep: stop the pack and the run alone after S seconds each, extrapolate")
    ap.add_argument("--rechoose", action="store_true", help="time nothing: choose pack=auto's defaults from the "
                    "figures in OUT.json (by the current rule), rewrite OUT.json, OUT.md and cdb/launch/pack_defaults.json")
    args = ap.parse_args(argv)
    if args.child:
        model, k, device, mrt = args.child
        return _child(model, int(k), device, float(mrt))
    from cdb.train.heap import keep_heap

    heap = keep_heap()  # as cdb-run does (CDB_KEEP_HEAP=0: glibc's default)
    if args.rechoose:
        return rechoose(_out_path(args.out))
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    out = _out_path(args.out)
    command = "python scripts/bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    speed = {"channels_last": True, "amp": device.type == "cuda", "cudnn_benchmark": device.type == "cuda"}
    if args.cifar_lt_sweep:
        from bench_cifar_lt import sweep_markdown

        small = {"data": _small_lt(), "imbalance": 10, "taus": (0.0, "dynamic")} if args.quick else {}
        r = cifar_lt_sweep(args.cifar_lt_sweep, str(device), args.time_limit, **small, **speed)
        r.update(command=command, machine=_machine(device), date=datetime.datetime.now().isoformat(timespec="seconds"))
        out.with_suffix(".json").write_text(json.dumps(r, indent=2) + "\n")
        out.with_suffix(".md").write_text(sweep_markdown(r, command, r["machine"]))
        print(out.with_suffix(".md").read_text())
        return
    if args.cifar_lt_run:
        with tempfile.TemporaryDirectory() as tmp:
            r = cifar_lt_run(args.cifar_lt_run, str(device), tmp, data=_small_lt() if args.quick else None, **speed)
        r.update(command=command, machine=_machine(device), date=datetime.datetime.now().isoformat(timespec="seconds"))
        out.with_suffix(".json").write_text(json.dumps(r, indent=2) + "\n")
        out.with_suffix(".md").write_text(
            f"# A whole CIFAR-100-LT run (ResNet-32, synthetic tensors of the real shape)\n\nCommand: `{command}` "
            f"({r['date']}). Device: {r['machine']}; torch {torch.__version__}.\n\n- {r['epochs']} epochs of "
            f"{r['train_images']} training images, validation and CDB update after each, checkpoints, final test: "
            f"**{r['wall_s']:.1f} s** ({r['per_epoch_s']:.2f} s per epoch), settings {r['speed']}.\n"
            "- The images are random, so the test error means nothing; only the time does.\n")
        print(out.with_suffix(".md").read_text())
        return
    ks = [1, 2] if args.quick else sorted(set(args.k) | {1})
    mrt = 0.05 if args.quick else args.min_run_time
    if args.compile_k:  # only this: trainer.compile=true against eager
        t0, load_before = time.time(), [round(x, 2) for x in os.getloadavg()]
        rows = compile_cases(args.compile_k, args.models, str(device), mrt, rounds=1 if args.quick else 2)
        r = {"command": command, "date": datetime.datetime.now().isoformat(timespec="seconds"),
             "wall_s": time.time() - t0, "machine": _machine(device), "torch": torch.__version__,
             "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()], "note": args.note,
             "heap": heap, "compiled": rows}
        out.with_suffix(".json").write_text(json.dumps(r, indent=2) + "\n")
        md = ["# trainer.compile=true against eager, packs of K (channels-first)", "",
              f"Command: `{command}` ({r['date']}, {r['wall_s']:.0f} s). Machine: {r['machine']}; torch {r['torch']}. "
              f"Load average before/after: {r['load_before']} / {r['load_after']}. {r['note']}", "",
              "| model | K | eager (ms per step) | compiled (ms per step) | speed-up |", "| --- | ---: | ---: | ---: | ---: |"]
        md += [f"| {NAMES[c['model']]} | {c['k']} | {c['eager_ms']:.2f} | {c['compiled_ms']:.2f} | {c['speedup']:.2f}x |"
               for c in rows]
        out.with_suffix(".md").write_text("\n".join(md) + "\n")
        print("\n".join(md))
        return
    batches = {**(QUICK_BATCH if args.quick else {}), **parse_batches(args.batch)}
    t0, load_before = time.time(), [round(x, 2) for x in os.getloadavg()]
    heap_rows = heap_cases(args.heap_k if not args.quick else [1, 2], "lenet_ren", str(device), mrt,
                           rounds=1 if args.quick else 2) if args.heap_k else []
    bare_rows = bare_cases(args.models, str(device), mrt, rounds=1 if args.quick else 3, batches=batches) \
        if args.bare else []
    rows, ms, costs = pack_cases(ks, str(device), mrt, steps=1 if args.quick else 2, models=args.models,
                                 batches=batches)
    compare = benchmark.Compare(ms)
    compare.trim_significant_figures()
    r = {"command": command, "date": datetime.datetime.now().isoformat(timespec="seconds"),
         "wall_s": time.time() - t0, "machine": _machine(device), "torch": torch.__version__,
         "device_type": device.type, "threads": args.threads, "load_before": load_before,
         "load_after": [round(x, 2) for x in os.getloadavg()], "note": args.note, **costs, "cases": rows,
         "heap": heap, "bare": bare_rows, "heap_cases": heap_rows,
         "compare": str(compare).strip()}
    r["default_pack"] = default_packs(rows, device.type, r["date"])
    out.with_suffix(".json").write_text(json.dumps(r, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(r))
    if not args.quick:
        record(r)
    print(markdown(r))


def record(r: dict) -> None:
    """Write a bench result's choice for its device into cdb/launch/pack_defaults.json (what pack=auto reads)."""
    from cdb.launch.defaults import RECORD, merged

    table = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    table[r["device_type"]] = merged(table.get(r["device_type"]), r["default_pack"])
    RECORD.write_text(json.dumps(table, indent=2) + "\n")


def rechoose(out: Path) -> None:
    """--rechoose: the defaults from a bench result's own figures, by the current rule; nothing is timed."""
    r = json.loads(out.with_suffix(".json").read_text())
    r["default_pack"] = default_packs(r["cases"], r["device_type"], r["date"])
    r["rechosen"] = datetime.datetime.now().isoformat(timespec="seconds")
    out.with_suffix(".json").write_text(json.dumps(r, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(r))
    record(r)
    print(markdown(r))


if __name__ == "__main__":
    main()
