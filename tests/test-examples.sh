#!/usr/bin/env bash
# The programs in examples/ build and do what they say, with the embedded model: example-transcribe prints
# what `modelpool transcribe` prints; example-live prints growing partial transcripts (each a prefix of the
# final one) and the same final text. usage: test-examples.sh BUILD_DIR   (exit 77 without the model or sox)
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")/.." && pwd)
model=$here/models/digits
[ -f "$model/model.safetensors" ] || { echo "skipped: no embedded model"; exit 77; }
command -v sox >/dev/null || { echo "skipped: sox missing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# the bundled phone number 8 times with 1 s pauses: ~50 s, three 20 s chunks
sox "$here/samples/phone-gsm.wav" "$tmp/one.wav" pad 0 1
sox "$tmp/one.wav" "$tmp/call.wav" repeat 7
want=$("$build/modelpool" transcribe --model "$model" "$tmp/call.wav")
[ -n "$want" ] || fail "empty transcript from the CLI"

got=$("$build/example-transcribe" "$model" "$tmp/call.wav")
[ "$got" = "$want" ] || fail "example-transcribe: $got != $want"

"$build/example-live" "$model" "$tmp/call.wav" > "$tmp/live.txt"
[ "$(grep -c '^final: ' "$tmp/live.txt")" = 1 ] || fail "example-live: no single final line"
[ "$(grep '^final: ' "$tmp/live.txt")" = "final: $want" ] || fail "example-live final differs: $(tail -1 "$tmp/live.txt")"
n=$(grep -c '^partial: ' "$tmp/live.txt" || true)
[ "$n" -ge 2 ] || fail "example-live: $n partial lines for three chunks"
while IFS= read -r line; do
  p=${line#partial: }
  [ "${want#"$p"}" != "$want" ] || [ -z "$p" ] || fail "partial is not a prefix of the final text: $p"
done < <(grep '^partial: ' "$tmp/live.txt")
echo "examples ok ($n partials)"
