#!/bin/sh
# bench-long.sh - peak RSS and wall time of `modelpool transcribe` on 1, 10 and 60 minutes of
# 8 kHz telephone audio (memory must stay flat as length grows, time linear).
#
# Usage: bench/bench-long.sh [BUILD_DIR] [--arch tiny | --model DIR] [MINUTES...]
#   defaults: build, --arch tiny, 1 10 60
# The input is espeak-ng speech mixed with low noise, as an 8 kHz mu-law WAV (G.711, what PBXes
# record), so decoding, resampling to 16 kHz, chunking (20 s chunks) and the decoder all run.
# Needs sox, espeak-ng and GNU time (/usr/bin/time). Prints a markdown table.
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
model="--arch tiny"
if [ $# -gt 0 ] && [ "$1" = "--arch" -o "$1" = "--model" ]; then model="$1 $2"; shift 2; fi
minutes=${*:-1 10 60}
cli="$build/modelpool"
[ -x "$cli" ] || { echo "bench-long: no $cli (build the mp-cli target)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 60 s of material: speech, then repeated to each length with sox (no long synthesis).
espeak-ng -w "$tmp/s.wav" "please call me back at seven two nine four five one, thank you for waiting" 2>/dev/null
sox "$tmp/s.wav" -r 8000 -b 16 "$tmp/s8.wav" pad 0 1
sox "$tmp/s8.wav" "$tmp/one.wav" repeat 20 trim 0 60
printf '| audio | file | wall s | x real time | peak RSS MB |\n|---|---|---|---|---|\n'
for m in $minutes; do
  sox "$tmp/one.wav" -e u-law "$tmp/in-$m.wav" repeat $((m - 1))
  # shellcheck disable=SC2086
  /usr/bin/time -f '%e %M' -o "$tmp/time" "$cli" transcribe $model --no-progress "$tmp/in-$m.wav" > "$tmp/out" 2> "$tmp/err" ||
    { echo "bench-long: transcribe failed for $m min:" >&2; cat "$tmp/err" >&2; exit 1; }
  read -r wall rss_kb < "$tmp/time"
  size=$(du -m "$tmp/in-$m.wav" | cut -f1)
  awk -v m="$m" -v w="$wall" -v r="$rss_kb" -v s="$size" \
    'BEGIN { printf "| %d min | %d MB | %.1f | %.1f | %.1f |\n", m, s, w, (m * 60) / w, r / 1024 }'
  rm -f "$tmp/in-$m.wav"
done
