#!/usr/bin/env bash
# The MNIST protocol campaign (docs/protocol.md), continued on any machine: trains, two at a time at the lowest CPU
# priority, every run of scripts/protocol_runs.py that results/protocol_calibration.csv does not hold yet, with the
# code of a frozen checkout (a `git worktree` at the commit the table names, with its own .venv), so that work on
# main never changes a run midway.
#   git worktree add outputs/frozen_a89e450 a89e450 && make -C outputs/frozen_a89e450 venv
#   nohup scripts/protocol_campaign.sh outputs/frozen_a89e450 >> outputs/campaign.log 2>&1 &
#   .venv/bin/python scripts/protocol_calibration.py --runs outputs --out results   # the table, at any time
# Order: P3, the short-profile check, P2 and P4, the claim on P3, the rest of Tables 1-2 on P3, P1 (40 min a run).
# Everything is in one function: bash parses it whole, so editing this file while it runs changes nothing.
main() {
  local frozen=${1:?usage: protocol_campaign.sh FROZEN_CHECKOUT [JOBS]} jobs=${2:-2}
  cd "$(dirname "$0")/.."
  [ -x "$frozen/.venv/bin/cdb-run" ] || { echo "protocol_campaign: no $frozen/.venv/bin/cdb-run (make -C $frozen venv)"; exit 2; }
  export CDB_DATA_ROOT=${CDB_DATA_ROOT:-data} CDB_OUTPUT_ROOT=${CDB_OUTPUT_ROOT:-$PWD/outputs} OMP_NUM_THREADS=1
  local py=.venv/bin/python skip="--skip results/protocol_calibration.csv" queue=$CDB_OUTPUT_ROOT/campaign_queue.txt
  mkdir -p "$CDB_OUTPUT_ROOT"
  { $py scripts/protocol_runs.py --part calibration $skip | grep 'name=calib_p3 '
    $py scripts/protocol_runs.py --part short $skip
    $py scripts/protocol_runs.py --part calibration $skip | grep -v 'name=calib_p3 ' | grep -v name=paper_schedule
    $py scripts/protocol_runs.py --part claim $skip
    $py scripts/protocol_runs.py --part tables $skip
    $py scripts/protocol_runs.py --part calibration $skip | grep name=paper_schedule
  } > "$queue"
  echo "$(date -u +%FT%TZ) protocol_campaign: $(wc -l < "$queue") runs to train with $frozen"
  nice -n 19 xargs -P "$jobs" -L 1 "$frozen/.venv/bin/cdb-run" < "$queue"
  echo "$(date -u +%FT%TZ) protocol_campaign: queue done (xargs exit $?)"
}
main "$@"
