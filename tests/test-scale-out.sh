#!/usr/bin/env bash
# Scale-out with the real HAProxy and deploy/haproxy.cfg: three `modelpool serve` backends, 30 concurrent
# clients for ~30 s, a rolling restart (SIGTERM, 0 client errors) and a crash (SIGKILL + restart, failures
# only among requests in flight on the killed server, at most its maxconn; back in rotation within 5 s).
# Loopback only, on free ports; bounded (the orchestration is tests/scale-out.py).
# usage: test-scale-out.sh MODELPOOL_BIN SOURCE_DIR [DURATION_S]   (exit 77 without haproxy, sox or the model)
set -euo pipefail
bin=$1 src=$2 duration=${3:-30}
command -v haproxy >/dev/null || { echo "skipped: haproxy missing (scripts/install-deps.sh --test)"; exit 77; }
command -v sox >/dev/null || { echo "skipped: sox missing"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "skipped: /usr/bin/python3 missing"; exit 77; }
[ -f "$src/models/digits/model.safetensors" ] || { echo "skipped: no embedded model"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# one BLAS thread per backend: three processes share the machine's cores
OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "$src/tests/scale-out.py" "$bin" "$src" "$tmp" "$duration"
