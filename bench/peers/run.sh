#!/usr/bin/env bash
# bench/peers/run.sh - modelpool against ONNX Runtime and the original design in PyTorch, one command.
# The same random wav2vec2-base weights and the same 8 s clip (R concurrent requests) through
#   (a) `modelpool bench` (fp32: pool sizes 1, 2, 30; int8: 2, 30),
#   (b) ONNX Runtime (npm onnxruntime-node, one session, intra-op threads = cores),
#   (c) the original design in PyTorch (Python pool over queue.Queue, pool sizes 1, 2, 4, 1 thread each),
# in alternating rounds (the order flips every round, so slow drifts of the machine hit all alike), then a lone 8 s
# clip on one thread (modelpool, PyTorch, ONNX Runtime). Prints throughput, latency p50/p95, peak RSS and ratios
# (medians of rounds); writes OUT/results.jsonl, OUT/summary.md and OUT/peers.png (gnuplot).
#
# usage: bench/peers/run.sh [--rounds N] [--requests R] [--avx2] [--build DIR] [--out DIR] [--setup-only]
#   --avx2   force everything to AVX2 on an AVX-512 machine: modelpool from an x86-64-v3 build (DIR, default
#            build-v3, configured here if missing), ONEDNN_MAX_CPU_ISA=AVX2, OPENBLAS_CORETYPE=Haswell, PyTorch with
#            ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2. ONNX Runtime has no such switch: it runs under
#            cpuid-avx2.so (built here), which hides AVX-512, AVX-VNNI and AMX from CPUID through the kernel's CPUID
#            faulting; the run stops if the check program says the mask is not in effect (no cpuid_fault).
# Defaults: 2 rounds of 30 requests: about 12 minutes on 2 quiet cores as-is; --avx2 is slower (use --rounds 1 to stay
# under 15 minutes). One-time setup (model export ~1 min, npm) is cached
# in MP_PEERS_DIR (default /var/tmp/modelpool-peers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rounds=2 requests=30 avx2=0 build="" setup_only=0 torch_env=(MP_PEERS=1) ort_env=(MP_PEERS=1)
work=${MP_PEERS_DIR:-/var/tmp/modelpool-peers}
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --avx2) avx2=1; shift ;;
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --setup-only) setup_only=1; shift ;;
    *) echo "usage: $0 [--rounds N] [--requests R] [--avx2] [--build DIR] [--out DIR] [--setup-only]" >&2; exit 2 ;;
  esac
done
cores=$(nproc)
if [ "$avx2" = 1 ]; then
  build=${build:-$root/build-v3}
  if [ ! -x "$build/modelpool" ]; then
    cmake -S "$root" -B "$build" -DMP_NATIVE=OFF -DCMAKE_C_FLAGS=-march=x86-64-v3 -DMP_BUILD_TESTS=OFF >/dev/null
  fi
  export ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell
  mode=avx2
  mkdir -p "$work"
  gcc -O2 -Wall -shared -fPIC -o "$work/cpuid-avx2.so" "$here/cpuid-avx2.c" -ldl
  gcc -O2 -Wall -pthread -o "$work/cpuid-avx2-check" "$here/cpuid-avx2-check.c"
  if ! LD_PRELOAD="$work/cpuid-avx2.so" "$work/cpuid-avx2-check" >&2; then
    echo "peers: cannot hide AVX-512 from ONNX Runtime on this machine (see above); no forced-AVX2 run" >&2
    exit 1
  fi
  ort_env=(LD_PRELOAD="$work/cpuid-avx2.so")
else
  build=${build:-$root/build}
  mode=as-is
  # Debian's OpenBLAS 0.3.21 does not know some recent Xeons and runs its SSE3 ("Prescott") kernels there, which
  # would slow PyTorch's linears 4x (modelpool then switches its fp32 GEMMs to oneDNN by itself). Name the core
  # for PyTorch only, so the peer is measured at its best and modelpool as it is.
  if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo; then torch_env=(OPENBLAS_CORETYPE=SkylakeX); fi
fi
cmake --build "$build" -j2 --target mp-cli bench-clip >/dev/null
out=${out:-$root/bench/peers/results-$mode}
mkdir -p "$out" "$work"

# ---- one-time setup: shared weights, ONNX export, clip; ONNX Runtime from npm (its install script would fetch
# CUDA parts: skipped, the CPU library ships in the package)
if [ ! -s "$work/model.onnx" ] || [ ! -s "$work/clip.f32" ]; then
  /usr/bin/python3 "$here/make-model.py" --out "$work"
fi
if [ ! -d "$here/node_modules/onnxruntime-node" ]; then
  (cd "$here" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
fi
[ "$setup_only" = 1 ] && { echo "setup done in $work"; exit 0; }

res="$out/results.jsonl"
: > "$res"
log() { printf '%s\n' "$*" >&2; }
tag() { python3 -c 'import json,sys; t=json.loads(sys.argv[1]); [print(json.dumps(dict(o, **t))) for o in (lambda d: d if isinstance(d, list) else [d])(json.load(sys.stdin))]' "$1"; }

run_modelpool() { # dtype workers-list round
  "$build/modelpool" bench --model "$work/model" --audio "$work/clip.wav" --requests "$requests" --workers "$2" \
    --dtype "$1" --format json | tag "{\"system\": \"modelpool-$1\", \"round\": $3}" >> "$res"
}
run_ort() { # round
  env "${ort_env[@]}" node "$here/ort.js" --model "$work/model.onnx" --clip "$work/clip.f32" --requests "$requests" --threads "$cores" |
    tag "{\"round\": $1}" >> "$res"
}
run_torch() { # pool round
  env "${torch_env[@]}" /usr/bin/python3 "$here/torch-pool.py" --model "$work/model" --clip "$work/clip.f32" --pool "$1" \
    --requests "$requests" --threads 1 | tag "{\"round\": $2}" >> "$res"
}

log "peers: mode $mode, $cores cores, $rounds rounds x $requests requests of 8 s; load: $(cut -d' ' -f1-3 /proc/loadavg)"
steps=("modelpool fp32 1,2,30" "ort" "torch 1" "modelpool int8 2,30" "torch 2" "torch 4")
for r in $(seq "$rounds"); do
  order=("${steps[@]}")
  if [ $((r % 2)) = 0 ]; then order=(); for ((i=${#steps[@]}-1; i>=0; i--)); do order+=("${steps[$i]}"); done; fi
  for s in "${order[@]}"; do
    set -- $s
    log "round $r: $s ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"
    case "$1" in # a failing step is reported and skipped, the run goes on
      modelpool) run_modelpool "$2" "$3" "$r" || log "round $r: $s FAILED" ;;
      ort) run_ort "$r" || log "round $r: $s FAILED" ;;
      torch) run_torch "$2" "$r" || log "round $r: $s FAILED" ;;
    esac
  done
done

# ---- a lone 8 s clip on one thread, alternating (bench-clip / torch-clip.py use the same architecture; weights do
# not change the speed)
clip="$out/clip.txt"
: > "$clip"
for r in $(seq "$rounds"); do
  o=$("$build/bench/bench-clip" --model "$work/model" --seconds 8 --threads 1 --repeat 2 | awk '/^median/ {print $2}')
  q=$("$build/bench/bench-clip" --model "$work/model" --seconds 8 --threads 1 --repeat 2 --dtype int8 | awk '/^median/ {print $2}')
  t=$(env "${torch_env[@]}" /usr/bin/python3 "$root/bench/torch-clip.py" --seconds 8 --threads 1 --repeat 2 | grep -o 'wall median [0-9.]*' | cut -d' ' -f3)
  n=$(env "${ort_env[@]}" node "$here/ort.js" --model "$work/model.onnx" --clip "$work/clip.f32" --requests 1 --threads 1 |
      python3 -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["wall_s"])')
  echo "$r $o $t $n $q" >> "$clip"
  log "lone clip round $r: modelpool $o s (int8 $q s), pytorch $t s, onnxruntime $n s"
done

python3 "$here/summarize.py" --mode "$mode" --results "$res" --clip "$clip" --out "$out"
