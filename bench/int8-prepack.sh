#!/usr/bin/env bash
# int8 products: pre-packed weights (oneDNN 1x1 convolutions, weights reordered at load; taken on AVX2)
# against dnnl_gemm_u8s8s32 on plain weights, in one process, alternating forward by forward (ABBA), so
# machine load hits both alike. Also checks the logits are bit-identical (exit 1 if not).
#
# usage: bench/int8-prepack.sh [BUILD_AS_IS] [BUILD_V3] [REPEAT]
#   BUILD_AS_IS (default build): the default build, run as it is (AVX-512 here: both sides take the GEMM,
#               so its ratio shows the method's noise, ~1.00).
#   BUILD_V3    (default build-v3): -DMP_NATIVE=OFF -DCMAKE_C_FLAGS=-march=x86-64-v3, run forced to AVX2
#               (OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2): the pre-packed path.
#   REPEAT      pairs of forwards per model (default 9 for base; 31 for the embedded model).
#   Each of the two settings runs twice more with glibc's mmap threshold fixed at 64 KiB, as the CLI and
#   server set it for int8 (apps/common/model.c), where dnnl_gemm_u8s8s32's per-call buffers are mapped and
#   unmapped on every call.
set -euo pipefail
asis=${1:-build}
v3=${2:-build-v3}
rep=${3:-9}
here=$(cd "$(dirname "$0")/.." && pwd)
export OMP_NUM_THREADS=1
run() { # label build env... -- model args
  local label=$1 b=$2; shift 2
  for m in "--model $here/models/digits" "--arch base"; do
    local r=$rep name=base
    case $m in --model*) r=$((rep * 3 + 4)) name=digits ;; esac
    # shellcheck disable=SC2086
    printf '%-30s %-8s %s  (load %s)\n' "$label" "$name" \
      "$(env "$@" "$b/bench/bench-clip" $m --dtype int8 --seconds 8 --threads 1 --repeat "$r" --vs-int8-gemm 1)" \
      "$(cut -d' ' -f1 /proc/loadavg)"
  done
}
run "as-is" "$asis" X=1
run "forced AVX2" "$v3" OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2
run "as-is, mmap 64 KiB" "$asis" GLIBC_TUNABLES=glibc.malloc.mmap_threshold=65536
run "forced AVX2, mmap 64 KiB" "$v3" OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2 \
  GLIBC_TUNABLES=glibc.malloc.mmap_threshold=65536
