#!/usr/bin/env bash
# Single-clip speed, ours vs PyTorch, side by side in one run (alternating, so both see the same machine load).
# usage: bench/compare-clip.sh [BUILD_DIR] [ROUNDS] [MORE_BUILD_DIRS...]
#   prints each round (wall and CPU seconds, median of 3 runs each) and the medians of rounds; the ratio
#   modelpool / PyTorch for the first build. Further build dirs (e.g. an older commit's) run in the same rounds.
#   Forced AVX2 on an AVX-512 machine: build with -DMP_NATIVE=OFF -DCMAKE_C_FLAGS=-march=x86-64-v3 and run with
#   OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 in the environment.
set -euo pipefail
build=${1:-build}
rounds=${2:-3}
shift $(($# >= 2 ? 2 : $#))
builds=("$build" "$@")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
med() { sort -g "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for r in $(seq "$rounds"); do
  line="round $r:"
  for i in "${!builds[@]}"; do
    out=$("${builds[$i]}/bench/bench-clip" --arch base --seconds 8 --threads 1 --repeat 3)
    w=$(awk '/^median/ {print $2}' <<<"$out"); c=$(awk '/^cpu/ {print $2}' <<<"$out")
    echo "$w" >>"$tmp/w$i"; echo "$c" >>"$tmp/c$i"
    line="$line modelpool[${builds[$i]}] ${w} s (cpu ${c}),"
  done
  t=$(/usr/bin/python3 "$here/torch-clip.py" --seconds 8 --threads 1 --repeat 3)
  tw=$(grep -o 'wall median [0-9.]*' <<<"$t" | awk '{print $3}'); tc=$(grep -o 'cpu time median [0-9.]*' <<<"$t" | awk '{print $4}')
  echo "$tw" >>"$tmp/tw"; echo "$tc" >>"$tmp/tc"
  echo "$line pytorch ${tw} s (cpu ${tc}); load $(cut -d' ' -f1 /proc/loadavg)"
done
for i in "${!builds[@]}"; do
  echo "modelpool[${builds[$i]}] median of rounds: $(med "$tmp/w$i") s wall, $(med "$tmp/c$i") s cpu"
done
echo "pytorch   median of rounds: $(med "$tmp/tw") s wall, $(med "$tmp/tc") s cpu"
awk -v a="$(med "$tmp/w0")" -v b="$(med "$tmp/tw")" -v c="$(med "$tmp/c0")" -v d="$(med "$tmp/tc")" \
  'BEGIN {printf "ratio modelpool / pytorch: %.3f wall, %.3f cpu\n", a / b, c / d}'
