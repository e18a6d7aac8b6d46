#!/bin/sh
# make-seeds.sh DIR - a small seed corpus for fuzz-audio: 0.1 s of tone in every supported format,
# made with sox (Debian sox + libsox-fmt-all), so no binary fixtures live in the repository.
# Each seed starts with the harness's configuration byte (0x00: detect the format, 16 kHz).
# Usage: tests/fuzz/make-seeds.sh /tmp/seeds && build/tests/fuzz/fuzz-audio -dict=tests/fuzz/audio.dict /tmp/seeds
set -eu
dir=${1:?usage: make-seeds.sh DIR}
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sox -n -r 8000 -b 16 "$tmp/src.wav" synth 0.1 sine 440 vol 0.5
n=0
for spec in "wav:" "wav:-e u-law" "wav:-e a-law" "wav:-e gsm-full-rate" "wav:-e ima-adpcm" "wav:-e ms-adpcm" \
            "wav:-b 24" "wav:-e floating-point -b 32" "gsm:" "amr-nb:" "flac:" "ogg:" "mp3:" "aiff:" "au:"; do
  t=${spec%%:*}; args=${spec#*:}
  n=$((n + 1))
  # shellcheck disable=SC2086
  if sox "$tmp/src.wav" $args -t "$t" "$tmp/seed" 2>/dev/null; then
    { printf '\000'; cat "$tmp/seed"; } > "$dir/seed-$n-$t"
  fi
done
# raw s16le at 8 kHz: configuration byte 0x48 = raw (bit 3), s16le (bits 4-5 = 0), 8000 Hz (bit 6)
sox "$tmp/src.wav" -t raw "$tmp/raw"
{ printf '\110'; cat "$tmp/raw"; } > "$dir/seed-raw-s16le"
ls "$dir" | wc -l
