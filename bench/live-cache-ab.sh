#!/usr/bin/env bash
# live-cache-ab.sh - the live feature cache against recomputing every window, in alternating rounds
# (machine load hits every variant alike): bench/live-compute.sh with --rounds 1 per run, the
# variants taking turns, and the median over rounds of each variant's live/offline CPU ratio,
# network audio and conv-encoder audio per call-audio second.
#
#   bench/live-cache-ab.sh [--rounds N] [--main BUILD_DIR] BUILD_DIR [--gsm | --gsm-long | --gsm-coded]
#
# Variants: BUILD_DIR with --cache 1 (the default) and --cache 0 (every window through the whole
# network, steps normalized over their window: the behaviour before the cache), and, with --main,
# another build's bench-live as it is (e.g. main's, for the same comparison with the old code).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rounds=5 main=
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --main) main=$2; shift 2 ;;
    *) break ;;
  esac
done
build=${1:?usage: live-cache-ab.sh [--rounds N] [--main BUILD_DIR] BUILD_DIR [--gsm | --gsm-coded]}
shift
out=$(mktemp -d "${TMPDIR:-/tmp}/live-cache-ab.XXXXXX")
trap 'rm -rf "$out"' EXIT
variants=(cache1 cache0)
[ -n "$main" ] && variants+=(main)
for r in $(seq 1 "$rounds"); do
  for v in "${variants[@]}"; do
    case $v in
      cache1) bash "$here/bench/live-compute.sh" "$build" "$@" --rounds 1 --cache 1 ;;
      cache0) bash "$here/bench/live-compute.sh" "$build" "$@" --rounds 1 --cache 0 ;;
      main) bash "$here/bench/live-compute.sh" "$main" "$@" --rounds 1 ;;
    esac | tail -1 >>"$out/$v"
  done
done
for v in "${variants[@]}"; do
  /usr/bin/python3 - "$v" "$out/$v" <<'EOF'
import re, statistics, sys
name, path = sys.argv[1], sys.argv[2]
rows = open(path).read().splitlines()
def med(pat):
    vals = [float(m.group(1)) for m in (re.search(pat, r) for r in rows) if m]
    return statistics.median(vals) if vals else float("nan")
print(f"{name}: {len(rows)} rounds; median live/offline CPU {med(r'[(]([0-9.]+)x[)]'):.2f}x "
      f"(live {med(r'live ([0-9.]+) '):.4f}, offline {med(r'offline ([0-9.]+) '):.4f} CPU-s per audio s); "
      f"network audio {med(r'network audio ([0-9.]+)x'):.2f}x, conv encoder {med(r'conv encoder ([0-9.]+)x'):.2f}x; "
      f"last round: {rows[-1].split(';', 1)[1].strip() if rows else ''}")
EOF
done
