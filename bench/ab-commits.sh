#!/usr/bin/env bash
# Commits side by side, forced to AVX2: each commit's tree (git archive) built for x86-64-v3 (bench-clip only),
# then bench/perf-avx2.sh over all of them in alternating rounds, fp32 and int8. For re-running a series of
# performance commits in a quiet window (CPU seconds per 8 s clip, one thread, median of 5 per run).
#
# usage: bench/ab-commits.sh COMMIT... [-- ROUNDS]      (default 5 rounds)
# Environment: MP_AB_DIR (where trees and builds go, default /tmp/mp-ab), MP_PERF_MODELS (default "digits base"),
#   MP_AB_DTYPES (default "fp32 int8").
set -euo pipefail
commits=()
rounds=5
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then rounds=${2:-5}; break; fi
  commits+=("$1"); shift
done
[ ${#commits[@]} -ge 1 ] || { echo "usage: $0 COMMIT... [-- ROUNDS]" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${MP_AB_DIR:-/tmp/mp-ab}
builds=()
for c in "${commits[@]}"; do
  id=$(git -C "$here" rev-parse --short "$c")
  if [ ! -x "$dir/$id/build/bench/bench-clip" ]; then
    rm -rf "$dir/$id" && mkdir -p "$dir/$id/src"
    git -C "$here" archive "$id" | tar -x -C "$dir/$id/src"
    cmake -S "$dir/$id/src" -B "$dir/$id/build" -DMP_NATIVE=OFF -DCMAKE_C_FLAGS=-march=x86-64-v3 >/dev/null
    cmake --build "$dir/$id/build" -j2 --target bench-clip >/dev/null
  fi
  builds+=("$dir/$id/build")
done
for dt in ${MP_AB_DTYPES:-fp32 int8}; do
  echo "== $dt"
  MP_PERF_DTYPE=$dt bash "$here/bench/perf-avx2.sh" "${builds[@]}" -- "$rounds" | tee "$dir/rounds-$dt.txt"
  for b in "${builds[@]}"; do
    for m in ${MP_PERF_MODELS:-digits base}; do
      grep -F " $m " "$dir/rounds-$dt.txt" | grep -F "$b " | awk '{print $6}' | sort -g |
        awk -v b="$b" -v m="$m" '{a[NR]=$1} END {printf "median of rounds %-6s %-40s %s CPU-s\n", m, b, a[int((NR+1)/2)]}'
    done
  done
done
