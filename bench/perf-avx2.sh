#!/usr/bin/env bash
# Before/after cost of one forward pass, forced to AVX2, for builds side by side.
#
# usage: bench/perf-avx2.sh [--perf] BUILD_A [BUILD_B ...] [-- ROUNDS]
#   Each BUILD is a build dir of `cmake -DMP_NATIVE=OFF -DCMAKE_C_FLAGS=-march=x86-64-v3`. For each model (the
#   embedded digits model and random wav2vec2-base; 8 s clip, 1 thread):
#   default   ROUNDS (3) alternating rounds of `bench-clip --repeat 5`; prints CPU seconds per clip (median of 5)
#             and wall seconds. Meant for a quiet machine.
#   --perf    one `perf record` (cpu-clock samples: works in VMs without hardware counters) of bench-clip
#             --repeat 10 per build and model; prints the top symbols' share of the samples. The profile share
#             is what a loaded machine still measures well.
# Environment: MP_PERF_MODELS (default "digits base"), MP_PERF_REPEAT (--perf: forwards, default 10), MP_PERF_OUT (where perf.data files go, default /tmp),
#   MP_PERF_DTYPE (fp32 or int8, default fp32).
set -euo pipefail
prof=0
if [ "${1:-}" = "--perf" ]; then prof=1; shift; fi
builds=()
rounds=3
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then rounds=${2:-3}; break; fi
  builds+=("$1"); shift
done
[ ${#builds[@]} -ge 1 ] || { echo "usage: $0 [--perf] BUILD_A [BUILD_B ...] [-- ROUNDS]" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
out=${MP_PERF_OUT:-/tmp}
export OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=1

margs() { if [ "$1" = digits ]; then echo "--model $here/models/digits"; else echo "--arch $1"; fi; echo "--dtype ${MP_PERF_DTYPE:-fp32}"; }

if [ $prof = 1 ]; then
  set +o pipefail # head and grep close the report pipes early
  for model in ${MP_PERF_MODELS:-digits base}; do
    for b in "${builds[@]}"; do
      f="$out/perf.$model.$(echo "$b" | tr / _).data"
      # shellcheck disable=SC2046
      perf record -q -e cpu-clock -o "$f" "$b/bench/bench-clip" $(margs "$model") --seconds 8 --threads 1 \
        --repeat "${MP_PERF_REPEAT:-10}" >/dev/null 2>&1
      echo "== $model $b ($f)"
      # total samples (1 per ms of this process's CPU time: absolute, unlike the shares), then the top symbols
      perf report -i "$f" --stdio 2>/dev/null | awk '/^# Event count/ {printf "cpu-clock total %.3f s\n", $NF / 1e9}'
      perf report -i "$f" -n --no-children --sort symbol 2>/dev/null | grep -v '^#' | grep . | head -15
    done
  done
  exit 0
fi

for r in $(seq "$rounds"); do
  for model in ${MP_PERF_MODELS:-digits base}; do
    for b in "${builds[@]}"; do
      # shellcheck disable=SC2046
      "$b/bench/bench-clip" $(margs "$model") --seconds 8 --threads 1 --repeat 5 |
        awk -v r="$r" -v m="$model" -v b="$b" -v load="$(cut -d' ' -f1 /proc/loadavg)" \
          '/^median/ {w = $2} /^cpu/ {c = $2}
           END {printf "round %s %-7s %-34s cpu %s s  wall %s s  (load %s)\n", r, m, b, c, w, load}'
    done
  done
done
