#!/usr/bin/env bash
# live-quiet.sh - the live-call figures of docs/LIVE.md, for a quiet machine: the library-level
# compute check (bench-live on live-calls.py's six recordings, live vs offline CPU, alternating
# rounds), then 30 real-time calls through one server (both protocols: lag, partial and final
# latency, lost words, server CPU live vs offline), each with final_skip_confidence at its
# default (0.8) and at 0 (a final pass for every utterance).
#
#   bench/live-quiet.sh [BUILD_DIR] [OUT_DIR]     (about 6 minutes; writes OUT_DIR/*.json)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
out=${2:-$(mktemp -d "${TMPDIR:-/tmp}/live-quiet.XXXXXX")}
mkdir -p "$out"
echo "== bench-live (library, one worker)"
"$here/bench/live-compute.sh" "$build" --rounds 5
"$here/bench/live-compute.sh" "$build" --rounds 5 --skip-conf 0
for conf in 0.8 0; do
  echo "== live-calls.py --calls 30 (serve --final-skip-conf $conf)"
  /usr/bin/python3 "$here/bench/live-calls.py" --binary "$build/modelpool" --calls 30 \
    --json "$out/live-calls-skip$conf.json" -- --final-skip-conf "$conf" | grep -v '^  [0-9.]*,\?$'
done
echo "results in $out"
