#!/usr/bin/env bash
# Grade labs N times in a row and print, per lab, the pass count and the median wall time.
#   scripts/repeat-labs.sh 20 3 4 5      (run from the repository, after npm ci)
set -euo pipefail
n=$1; shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for lab in "$@"; do
  for _ in $(seq "$n"); do
    t0=$(date +%s%N)
    if ./bin/lab.js grade "$lab" --json >/dev/null 2>&1; then ok=1; else ok=0; fi
    echo "$lab $ok $(( ($(date +%s%N) - t0) / 1000000 ))" >>"$out"
  done
done
sort -k1,1n -k3,3n "$out" | awk '
  { lab=$1; pass[lab]+=$2; t[lab, ++k[lab]]=$3 }
  END { for (l in k) { m=k[l]; med=(m%2) ? t[l,(m+1)/2] : (t[l,m/2]+t[l,m/2+1])/2;
        printf "lab %s: %d/%d passed, median wall %.1f s\n", l, pass[l], m, med/1000 } }' | sort -k2,2n
