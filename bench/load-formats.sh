#!/usr/bin/env bash
# load-formats.sh - load time and resident memory of the same wav2vec2-base weights (94.4 M
# parameters, random) as pytorch_model.bin and as model.safetensors, in alternating rounds, one
# load per process (bench/bench-load.c). The target: the .bin within 10% of safetensors.
#   bench/load-formats.sh [BUILD_DIR] [ROUNDS] [WORK_DIR]
# The two directories are written once into WORK_DIR (default /tmp/w2v2-base-formats, ~760 MB,
# never committed) by tools/make_torch_fixtures.py --base-random (Debian python3-torch).
# Both files are read once first so each round sees a warm page cache (the steady state of a
# serving machine); drop caches yourself (echo 3 > /proc/sys/vm/drop_caches) for cold figures.
set -euo pipefail
cd "$(dirname "$0")/.."
# Loading runs no BLAS, but OpenBLAS starts its threads when the library loads and they compete
# with the loader for the cores; one thread keeps the comparison about the weight files.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
build=${1:-build}
rounds=${2:-10}
work=${3:-/tmp/w2v2-base-formats}
bin="$build/bench/bench-load"
[ -x "$bin" ] || { echo "load-formats: build $bin first (cmake --build $build --target bench-load)"; exit 1; }
if [ ! -f "$work/bin/pytorch_model.bin" ] || [ ! -f "$work/safetensors/model.safetensors" ]; then
  /usr/bin/python3 tools/make_torch_fixtures.py --ref tests/data/ref --out "$work" --base-random
fi
cat "$work/bin/pytorch_model.bin" "$work/safetensors/model.safetensors" > /dev/null
ls -l "$work/bin/pytorch_model.bin" "$work/safetensors/model.safetensors"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for i in $(seq "$rounds"); do  # alternate which format goes first, so order effects cancel
  if [ $((i % 2)) -eq 0 ]; then a=safetensors b=bin; else a=bin b=safetensors; fi
  "$bin" "$work/$a" >> "$out"
  "$bin" "$work/$b" >> "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["format"], []).append(r)
med = {}
for fmt, rs in by.items():
    med[fmt] = {k: statistics.median(r[k] for r in rs) for k in ("load_s", "cpu_s", "rss_mb", "rss_delta_mb", "hwm_mb")}
    m = med[fmt]
    print(f"{fmt:14s} n={len(rs):2d}  load {m['load_s']*1000:7.1f} ms (cpu {m['cpu_s']*1000:6.1f} ms)  rss {m['rss_mb']:6.1f} MB "
          f"(+{m['rss_delta_mb']:.1f} by the load)  peak {m['hwm_mb']:6.1f} MB")
a, b = med.get("pytorch zip"), med.get("safetensors")
if a and b:
    print(f"pytorch_model.bin / model.safetensors: load time x{a['load_s']/b['load_s']:.3f} "
          f"(cpu x{a['cpu_s']/b['cpu_s']:.3f}), "
          f"rss x{a['rss_mb']/b['rss_mb']:.3f}, peak x{a['hwm_mb']/b['hwm_mb']:.3f}")
PY
