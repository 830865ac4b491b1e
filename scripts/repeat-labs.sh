#!/usr/bin/env bash
# Grade labs N times and print, per lab, the pass count and the median wall time.
#   scripts/repeat-labs.sh 20 3 4 5          (run from the repository, after npm ci)
#   JOBS=3 scripts/repeat-labs.sh 20 $(seq 13)   (three runs at a time: each run is its own lab instance)
# A failed run's output is kept in $KEEP (default: a fresh directory under /tmp), to read why it failed.
set -euo pipefail
n=$1; shift
jobs=${JOBS:-1}
keep=${KEEP:-$(mktemp -d /tmp/tcplab-repeat.XXXXXX)}
mkdir -p "$keep"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
one() { # lab run-number
  local t0 ok
  t0=$(date +%s%N)
  if ./bin/lab.js grade "$1" --json >"$keep/$1-$2.json" 2>"$keep/$1-$2.err"; then ok=1; rm -f "$keep/$1-$2".*; else ok=0; fi
  echo "$1 $ok $(( ($(date +%s%N) - t0) / 1000000 ))" >>"$out"
}
export -f one; export keep out
./bin/lab.js list >/dev/null # builds dist/ once, before parallel runs could race to build it
for lab in "$@"; do for i in $(seq "$n"); do echo "$lab $i"; done; done | xargs -P "$jobs" -n 2 bash -c 'one "$0" "$1"'
sort -k1,1n -k3,3n "$out" | awk '
  { lab=$1; pass[lab]+=$2; t[lab, ++k[lab]]=$3 }
  END { for (l in k) { m=k[l]; med=(m%2) ? t[l,(m+1)/2] : (t[l,m/2]+t[l,m/2+1])/2;
        printf "lab %s: %d/%d passed, median wall %.1f s\n", l, pass[l], m, med/1000 } }' | sort -k2,2n
if find "$keep" -mindepth 1 -print -quit | grep -q .; then echo "failed runs' output: $keep"; else rmdir "$keep"; fi
