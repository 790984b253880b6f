#!/usr/bin/env bash
# The MNIST protocol campaign (docs/protocol.md), continued on any machine: trains, two at a time at the lowest CPU
# priority, every run of `studies/mnist_protocol/protocol_runs.py --part campaign` that the committed records lack (the calibration
# rows of results/protocol_calibration.csv, the run records of results/runs/), with the code of a frozen checkout (a
# `git worktree` at the commit the tables name, with its own .venv), so that work on main never changes a run
# midway. Each finished run's config.yaml and metrics.json are copied to results/runs/ at once
# (studies/mnist_protocol/archive_runs.py), so a new machine, which has no outputs/, loses nothing that finished.
#   git worktree add outputs/frozen_a89e450 a89e450 && make -C outputs/frozen_a89e450 venv && make venv
#   nohup studies/mnist_protocol/protocol_campaign.sh outputs/frozen_a89e450 >> outputs/campaign.log 2>&1 &
#   .venv/bin/python studies/mnist_protocol/protocol_calibration.py --runs outputs --out results   # the table, at any time
# Everything is in one function: bash parses it whole, so editing this file while it runs changes nothing.
main() {
  local frozen=${1:?usage: protocol_campaign.sh FROZEN_CHECKOUT [JOBS]} jobs=${2:-2}
  cd "$(dirname "$0")/../.."
  [ -x "$frozen/.venv/bin/cdb-run" ] || { echo "protocol_campaign: no $frozen/.venv/bin/cdb-run (make -C $frozen venv)"; exit 2; }
  export CDB_DATA_ROOT=${CDB_DATA_ROOT:-data} CDB_OUTPUT_ROOT=${CDB_OUTPUT_ROOT:-$PWD/outputs} OMP_NUM_THREADS=1
  local py=.venv/bin/python queue=$CDB_OUTPUT_ROOT/campaign_queue.txt
  mkdir -p "$CDB_OUTPUT_ROOT"
  $py studies/mnist_protocol/protocol_runs.py --part campaign --skip results/protocol_calibration.csv \
    --skip-archived results/runs > "$queue"
  echo "$(date -u +%FT%TZ) protocol_campaign: $(wc -l < "$queue") runs to train with $frozen"
  # one run per line; after it, its record (and every other finished one of its run name) goes to results/runs/
  nice -n 19 xargs -P "$jobs" -L 1 sh -c '"$0" "$@"; name=${1#name=}; \
    .venv/bin/python studies/mnist_protocol/archive_runs.py --runs "$CDB_OUTPUT_ROOT/$name" --out "results/runs/$name"' \
    "$frozen/.venv/bin/cdb-run" < "$queue"
  echo "$(date -u +%FT%TZ) protocol_campaign: queue done (xargs exit $?)"
}
main "$@"
