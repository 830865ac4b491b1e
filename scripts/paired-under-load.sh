#!/usr/bin/env bash
# Two versions of lab files graded alternately under an artificial load, to compare how they hold up:
#   BURN=30 scripts/paired-under-load.sh ROUNDS OLD_DIR NEW_DIR FILE...
# e.g. old files from git:  mkdir /tmp/old && git show HEAD~1:labs/09-simultaneous-open.yaml > /tmp/old/09-simultaneous-open.yaml
#      BURN=30 scripts/paired-under-load.sh 4 /tmp/old labs 09-simultaneous-open.yaml
# The load: BURN busy loops (default 6) and a `lab grade 1 3 5 --parallel 3` loop, all stopped at the end.
# Prints one line per run: version, file, 1 (passed) or 0, the 1-minute load average.
set -euo pipefail
rounds=$1 old=$2 new=$3
shift 3
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq "${BURN:-6}"); do
  (while :; do :; done) &
  pids+=($!)
done
(while :; do ./bin/lab.js grade 1 3 5 --parallel 3 --json >/dev/null 2>&1 || true; done) &
pids+=($!)
for _ in $(seq "$rounds"); do
  for v in old new; do
    for f in "$@"; do
      dir=$old; [ "$v" = new ] && dir=$new
      if ./bin/lab.js grade "$dir/$f" --json >/dev/null 2>&1; then ok=1; else ok=0; fi
      echo "$v $f $ok $(cut -d' ' -f1 /proc/loadavg)"
    done
  done
done
