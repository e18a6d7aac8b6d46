#!/usr/bin/env bash
# Single-clip speed, ours vs PyTorch, side by side in one run (alternating, so both see the same machine load).
# usage: bench/compare-clip.sh [BUILD_DIR] [ROUNDS]     prints each round and the median ratio
set -euo pipefail
build=${1:-build}
rounds=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
ours=() theirs=()
for r in $(seq "$rounds"); do
  o=$("$build/bench/bench-clip" --arch base --seconds 8 --threads 1 --repeat 3 | awk '/^median/ {print $2}')
  t=$(/usr/bin/python3 "$here/torch-clip.py" --seconds 8 --threads 1 --repeat 3 | grep -o 'wall median [0-9.]*' | cut -d' ' -f3)
  echo "round $r: modelpool ${o} s, pytorch ${t} s"
  ours+=("$o"); theirs+=("$t")
done
printf '%s\n' "${ours[@]}" | sort -g | awk '{a[NR]=$1} END {print "modelpool median of rounds:", a[int((NR+1)/2)], "s"}'
printf '%s\n' "${theirs[@]}" | sort -g | awk '{a[NR]=$1} END {print "pytorch   median of rounds:", a[int((NR+1)/2)], "s"}'
