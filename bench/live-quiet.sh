#!/usr/bin/env bash
# live-quiet.sh - the live-call figures of docs/LIVE.md, for a quiet machine: the library-level
# compute check (bench-live, live vs offline CPU, alternating rounds: live-calls.py's six
# synthesized recordings, GSM telephone speech, and the synthesized ones through the GSM codec),
# then 30 real-time calls through one server (both protocols: lag, partial and final
# latency, lost words, server CPU live vs offline), each with final_skip_confidence at its
# default (0.8) and at 0 (a final pass for every utterance), then with real GSM speech
# (--audio phone) and the synthesized calls through the GSM codec (--audio gsm-coded).
#
#   bench/live-quiet.sh [BUILD_DIR] [OUT_DIR]     (about 10 minutes; writes OUT_DIR/*.json)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
out=${2:-$(mktemp -d "${TMPDIR:-/tmp}/live-quiet.XXXXXX")}
mkdir -p "$out"
echo "== bench-live (library, one worker): synthesized calls"
"$here/bench/live-compute.sh" "$build" --rounds 5
"$here/bench/live-compute.sh" "$build" --rounds 5 --skip-conf 0
echo "== bench-live: GSM telephone speech (samples/phone-gsm.wav and two arrangements of it)"
"$here/bench/live-compute.sh" "$build" --gsm --rounds 5
"$here/bench/live-compute.sh" "$build" --gsm --rounds 5 --skip-conf 0
echo "== bench-live: the synthesized calls through the GSM 06.10 codec"
"$here/bench/live-compute.sh" "$build" --gsm-coded --rounds 5
for conf in 0.8 0; do
  echo "== live-calls.py --calls 30 (serve --final-skip-conf $conf)"
  /usr/bin/python3 "$here/bench/live-calls.py" --binary "$build/modelpool" --calls 30 \
    --json "$out/live-calls-skip$conf.json" -- --final-skip-conf "$conf" | grep -v '^  [0-9.]*,\?$'
done
for audio in phone gsm-coded; do
  echo "== live-calls.py --calls 30 --audio $audio (GSM speech through the server)"
  /usr/bin/python3 "$here/bench/live-calls.py" --binary "$build/modelpool" --calls 30 --audio "$audio" \
    --json "$out/live-calls-$audio.json" | grep -v '^  [0-9.]*,\?$'
done
echo "results in $out"
