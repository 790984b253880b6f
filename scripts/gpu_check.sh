#!/usr/bin/env bash
# The GPU checks of cdb in one prepared script (docs/performance.md, "On a GPU").
#
#   bash scripts/gpu_check.sh --prepare   # here, before a device call: MNIST (gzipped) into .gpu_data/ and the
#                                         # wheels the GPU image lacks into .whl/ (both git-ignored, carried)
#   bash scripts/gpu_check.sh             # on the GPU machine: everything below, results into $OUT (results/gpu)
#   bash scripts/gpu_check.sh --tiny      # every step at toy sizes on any machine, CPU included (the test)
#
# PYTHON (default python3) is the interpreter that has torch. Steps: (1) the pack bench, LeNet-5 and Ren et al.'s LeNet (MNIST's
# default), K = 1 ... 512 with % of the fp32 and TF32 matrix-product rate;
# (2) the pack bench of ResNet-32, K = 1 ... 64 at CIFAR's 128 images per run per step;
# (3) Table 2's paper schedule at r = 0.99: 7 tau x 10 seeds = 70 runs of 4000 epochs, packed, on real MNIST,
#     timed, stopped after TABLE2_LIMIT seconds (it resumes on the next call; the time per step measured so far
#     gives the estimate for the whole table); (4) one 200-epoch CIFAR-100-LT ResNet-32 run on synthetic tensors;
# (5) Table 4's 7 tau at imbalance 100 (200 epochs, real CIFAR-100-LT under CDB_DATA_ROOT if there, else synthetic)
#     as one pack, then one run alone, each stopped after SWEEP_LIMIT seconds and extrapolated to 200 epochs.
# STEPS="2 5" runs only those steps (all of them take more than one 10-minute device call: choose).
# Results in $OUT: gpu_check.log, summary.md (every step's report), the JSON of each bench, table2.md and
# table2_progress.md: step 3's rows per run, time per run-step and the whole table's estimate, rewritten every ~10 s
# while it trains (scripts/sweep_progress.py; the most rows ever seen, with the tail of the first run's run.log),
# so a step stopped by its limit, a signal or a kill still leaves them. Step 3 checkpoints every 4 validations
# (200 steps), well within its limit. TINY_LENGTH (--tiny): step 3's trainer.length (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-all}"
PY="${PYTHON:-python3}"

if [ "$MODE" = "--prepare" ]; then
  src="${CDB_DATA_ROOT:-../shared/data}/MNIST/raw"
  mkdir -p .gpu_data/MNIST/raw
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    gzip -c "$src/$f" > ".gpu_data/MNIST/raw/$f.gz"
  done
  mkdir -p .whl
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d .whl hydra-core==1.3.2 omegaconf==2.3.0
  # omegaconf 2.3 needs antlr4 4.9.*, published as a source archive only: build its pure-Python wheel here
  "$PY" -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
  grep -qx '/.gpu_data/' .git/info/exclude || echo '/.gpu_data/' >> .git/info/exclude
  grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
  du -sh .gpu_data .whl
  exit 0
fi

TINY=0
[ "$MODE" = "--tiny" ] && TINY=1
OUT="${OUT:-results/gpu}"
STEPS=" ${STEPS:-1 2 3 4 5} "
step() { [[ "$STEPS" == *" $1 "* ]]; }
mkdir -p "$OUT"
WORK="$(mktemp -d)"   # every report here first; $OUT gets the JSON, summary.md and table2.md (at most 8 files)
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1 && ! "$PY" -c "import hydra" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${CDB_DATA_ROOT:-}" ]; then
  if [ -d .gpu_data/MNIST/raw ]; then
    mkdir -p /tmp/cdb_data/MNIST/raw
    for f in .gpu_data/MNIST/raw/*.gz; do gunzip -c "$f" > "/tmp/cdb_data/MNIST/raw/$(basename "$f" .gz)"; done
    export CDB_DATA_ROOT=/tmp/cdb_data
  else
    export CDB_DATA_ROOT="$PWD/../shared/data"
  fi
fi
RUNS="${RUNS:-/tmp/cdb_gpu_runs}"
LOG="$OUT/gpu_check.log"
log() { echo "[$(date -u +%FT%TZ)] $*" | tee -a "$LOG"; }
failed=0
fail() { failed=1; log "$@"; }

if [ $TINY = 1 ]; then
  DEVICE=auto; BENCH=(--quick --models lenet5 lenet_ren); CIFAR_EPOCHS=1; TABLE2_LIMIT="${TABLE2_LIMIT:-300}"
  TABLE2=(seed='range(2)' trainer.length="${TINY_LENGTH:-2}" trainer.checkpoint_every=1 pack=14 threads=1)
  RESNET=(--quick); SWEEP=(--quick --cifar-lt-sweep 1); SMALL=(--quick)
else
  DEVICE=cuda; BENCH=(--models lenet5 lenet_ren --k 1 2 4 8 16 32 64 128 256 512 --min-run-time 1); CIFAR_EPOCHS=200
  TABLE2_LIMIT="${TABLE2_LIMIT:-420}"; TABLE2=(pack=70 trainer.checkpoint_every=4)
  RESNET=(--k 1 2 4 8 16 32 64 --batch resnet32=128 --min-run-time 1)
  SWEEP=(--cifar-lt-sweep 200 --time-limit "${SWEEP_LIMIT:-150}"); SMALL=()
fi
log "machine: $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (CPU)", "| torch", torch.__version__)' 2>&1 || true)"
log "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown); mode: $MODE"

if step 1; then
log "1/5 pack bench, LeNet-5 and Ren et al.'s LeNet"
"$PY" scripts/bench.py --device "$DEVICE" "${BENCH[@]}" --out "$WORK/bench" --note "scripts/gpu_check.sh $MODE" \
  > /tmp/cdb_bench.out 2>&1 || fail "bench failed: $(tail -3 /tmp/cdb_bench.out)"
fi

if step 2; then
log "2/5 pack bench, ResNet-32"
"$PY" scripts/bench.py --device "$DEVICE" --models resnet32 "${RESNET[@]}" --out "$WORK/bench_resnet32" \
  --note "scripts/gpu_check.sh $MODE" > /tmp/cdb_bench_resnet.out 2>&1 \
  || fail "resnet32 bench failed: $(tail -3 /tmp/cdb_bench_resnet.out)"
grep -h "model=resnet32" "$WORK/bench_resnet32.md" | tee -a "$LOG" || true
fi

if step 3; then
log "3/5 Table 2, paper schedule, r = 0.99, packed (limit ${TABLE2_LIMIT} s; progress: $OUT/table2_progress.md)"
t0=$(date +%s)
set +e
timeout "$TABLE2_LIMIT" "$PY" -m cdb.cli -m experiment=table2 dataset.majority_ratio=0.99 name=table2_gpu \
  output_root="$RUNS" trainer.device="$DEVICE" hydra.launcher.n_jobs=1 resume=true "${TABLE2[@]}" \
  > /tmp/cdb_table2.out 2>&1 &
sweep=$!
# every ~10 s: each run's rows, the time per run-step and the whole table's estimate, into $OUT while it trains
"$PY" scripts/sweep_progress.py "$RUNS/table2_gpu" --out "$OUT/table2_progress.md" --pid $sweep --every 10 \
  --runs-total 70 --started "$t0" > /dev/null 2>&1 &
monitor=$!
stopped=0
trap 'stopped=1; kill -TERM $sweep 2>/dev/null' TERM INT   # stopped from outside: end the sweep, keep the report
wait $sweep; rc=$?
while kill -0 $sweep 2>/dev/null; do wait $sweep; rc=$?; done   # a trapped signal interrupts the first wait
wait $monitor
trap - TERM INT
set -e
[ $rc = 0 ] || [ $rc = 124 ] || [ $stopped = 1 ] || failed=1   # 124: stopped at TABLE2_LIMIT (resumes next time)
wall=$(( $(date +%s) - t0 ))
log "table2 sweep: exit $rc after $wall s$([ $stopped = 1 ] && echo ' (stopped by a signal)'); last lines: $(tail -2 /tmp/cdb_table2.out | tr '\n' ' ')"
grep -h "^- " "$OUT/table2_progress.md" | sed 's/^- /table2 progress: /' | tee -a "$LOG" || true
if [ $stopped = 1 ]; then log "stopped during step 3: later steps skipped (exit 143)"; cp "$WORK"/*.json "$OUT/" 2>/dev/null || true; exit 143; fi
"$PY" - "$RUNS/table2_gpu" "$wall" "$rc" <<'EOF' | tee -a "$LOG"
import json, sys
from pathlib import Path
import yaml
root, wall, rc = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
logs = list(root.rglob("log.jsonl"))
rows = sum(len(p.read_text().splitlines()) for p in logs)
done = sum(1 for p in root.rglob("metrics.json"))
configs = sorted(p for p in root.rglob("config.yaml") if p.parent.name != ".hydra")  # resolved, not Hydra's
if configs:  # a row per validation: trainer.eval_every units; a run: trainer.length units (P3: 50 and 8000 steps)
    t = yaml.safe_load(configs[0].read_text())["trainer"]
    per_run, what = t["length"] / t["eval_every"], f"{t['eval_every']} {t['unit']}s"
else:
    per_run, what = float("nan"), "?"
print(f"table2: {len(configs)} runs set up, {len(logs)} started, {done} finished, {rows} validation rows "
      f"(one per {what}) in {wall:.0f} s (exit {rc})")
if rows:
    per_row = wall / rows  # set-up included: an upper bound
    print(f"table2: at {1e3 * per_row:.2f} ms per run-row, the 70-run table would take "
          f"{per_row * 70 * per_run / 60:.1f} min, all 350 runs {per_row * 350 * per_run / 60:.1f} min")
else:
    print("table2: no validation row left in the run directories (table2_progress.md has what was seen while it ran)")
EOF
"$PY" -m cdb table table2 --runs "$RUNS/table2_gpu" --out "$WORK" \
  --command "scripts/gpu_check.sh (cdb-run -m experiment=table2 dataset.majority_ratio=0.99 ${TABLE2[*]})" \
  > /dev/null 2>&1 && cp "$WORK/table2.md" "$OUT/" || log "no finished run for the table yet"
fi

if step 4; then
log "4/5 CIFAR-100-LT, one run, ${CIFAR_EPOCHS} epochs"
"$PY" scripts/bench.py --device "$DEVICE" --cifar-lt-run "$CIFAR_EPOCHS" "${SMALL[@]}" --out "$WORK/bench_cifar_lt" \
  > /tmp/cdb_cifar.out 2>&1 || fail "cifar-lt failed: $(tail -3 /tmp/cdb_cifar.out)"
grep -h "s per epoch" "$WORK/bench_cifar_lt.md" | tee -a "$LOG" || true
fi

if step 5; then
log "5/5 CIFAR-100-LT, Table 4's tau at one imbalance (100; --tiny: 10): one pack against one run alone (${SWEEP[*]})"
"$PY" scripts/bench.py --device "$DEVICE" "${SWEEP[@]}" --out "$WORK/cifar_lt_sweep" \
  > /tmp/cdb_sweep.out 2>&1 || fail "cifar-lt sweep failed: $(tail -3 /tmp/cdb_sweep.out)"
grep -h "^| \|Per-run speed-up" "$WORK/cifar_lt_sweep.md" | tee -a "$LOG" || true
fi

cp "$WORK"/*.json "$OUT/" 2>/dev/null || true
cat "$WORK"/*.md > "$OUT/summary.md" 2>/dev/null || true
rm -rf "$WORK"
log "done (exit $failed)"
exit $failed
