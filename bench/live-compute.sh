#!/usr/bin/env bash
# live-compute.sh - CPU per audio second of mp_live against offline transcription, in one process
# (bench-live): the library-level check of the "live compute <= 2x offline" target, quick enough
# to repeat and to run under perf. The end-to-end figure (30 calls through the server) is
# bench/live-calls.py's.
#
#   bench/live-compute.sh [BUILD_DIR] [--gsm | --gsm-long | --gsm-coded] [bench-live options, e.g. --rounds 5 --final-pass 0]
#
# Recordings: by default the six calls bench/live-calls.py synthesizes (espeak-ng, seed 13).
# --gsm: real telephone speech instead: samples/phone-gsm.wav, it with 1 s of silence after it,
# and it three times with 1.5 s pauses (29 s, 5 utterances; the windows are unsure of it, so
# every final pass runs). --gsm-long: one longer call, the sample ten times with 1.5 s pauses (66 s:
# the stream's normalization statistics settle, as in a call of minutes). --gsm-coded: the six synthesized calls through the GSM 06.10 codec
# (sox gsm, full rate) and back.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
[ $# -gt 0 ] && shift
set_=clean
case "${1:-}" in --gsm) set_=gsm; shift ;; --gsm-long) set_=long; shift ;; --gsm-coded) set_=coded; shift ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/live-compute.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if [ $set_ = gsm ]; then
  s=$here/samples/phone-gsm.wav
  sox "$s" "$tmp/one.wav" pad 0 1
  sox -n -r 8000 -c 1 -b 16 "$tmp/pause.wav" trim 0 1.5
  sox "$s" "$tmp/pause.wav" "$s" "$tmp/pause.wav" "$s" "$tmp/three.wav"
  files=("$s" "$tmp/one.wav" "$tmp/three.wav")
elif [ $set_ = long ]; then
  s=$here/samples/phone-gsm.wav
  sox -n -r 8000 -c 1 -b 16 "$tmp/pause.wav" trim 0 1.5
  parts=("$s"); for i in 2 3 4 5 6 7 8 9 10; do parts+=("$tmp/pause.wav" "$s"); done
  sox "${parts[@]}" "$tmp/long.wav"
  files=("$tmp/long.wav")
else
  /usr/bin/python3 "$here/bench/live-calls.py" --write-recordings "$tmp" >/dev/null
  files=("$tmp"/call*.wav)
  if [ $set_ = coded ]; then
    for f in "${files[@]}"; do
      sox "$f" -t gsm "${f%.wav}.gsm" && sox -t gsm -r 8000 -c 1 "${f%.wav}.gsm" -b 16 -e signed-integer "$f"
    done
  fi
fi
OPENBLAS_NUM_THREADS=1 "$build/bench/bench-live" "$@" "${files[@]}"
