#!/usr/bin/env bash
# live-compute.sh - CPU per audio second of mp_live against offline transcription, in one process
# (bench-live), on the six recordings bench/live-calls.py synthesizes (espeak-ng, seed 13): the
# library-level check of the "live compute <= 2x offline" target, quick enough to repeat and to
# run under perf. The end-to-end figure (30 calls through the server) is bench/live-calls.py's.
#
#   bench/live-compute.sh [BUILD_DIR] [bench-live options, e.g. --rounds 5 --final-pass 0]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
[ $# -gt 0 ] && shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/live-compute.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$here/bench/live-calls.py" --write-recordings "$tmp" >/dev/null
OPENBLAS_NUM_THREADS=1 "$build/bench/bench-live" "$@" "$tmp"/call*.wav
