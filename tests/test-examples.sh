#!/usr/bin/env bash
# The programs in examples/ build and do what they say, with the embedded model: example-transcribe prints
# what `modelpool transcribe` prints; example-live prints partial results as the call goes and one final
# result per utterance. usage: test-examples.sh BUILD_DIR   (exit 77 without the model or sox)
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

# example-live: a live stream fed 20 ms at a time; the finals of each spoken copy (the 1 s pauses
# end utterances) together give the sample's transcript (at most one word off: docs/LIVE.md), one
# final per copy or two (the speaker pauses 0.64 s between FIVE and FIVE, "415 | 555 0198", just
# over the 0.6 s endpoint: steps without left context, once an utterance is unsure, may cut there),
# times in order, and partial results before each final
"$build/example-live" "$model" "$tmp/call.wav" > "$tmp/live.txt"
ref=$(cat "$here/samples/phone-gsm.txt")
nf=$(grep -c '^final: ' "$tmp/live.txt" || true)
n=$(grep -c '^partial: ' "$tmp/live.txt" || true)
[ "$n" -ge 16 ] || fail "example-live: $n partial lines for 8 utterances"
copy_s=$(soxi -D "$tmp/one.wav")
/usr/bin/python3 - "$tmp/live.txt" "$ref" "$copy_s" <<'PY' || fail "example-live: $(cat "$tmp/live.txt")"
import sys
lines = [l.split(None, 2) for l in open(sys.argv[1]) if l.startswith("final: ")]
ref, copy_s = sys.argv[2].split(), float(sys.argv[3])


def edits(a, b):
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(b) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
    return d[len(b)]


copies, prev_end = {}, 0.0
for _, span, *text in lines:
    a, b = map(float, span.split("-"))
    assert a >= prev_end - 1e-6 and b > a, f"utterance times {span} after {prev_end}"
    prev_end = b
    copies.setdefault(int(a // copy_s), []).append(text[0].split() if text else [])
assert sorted(copies) == list(range(8)), f"finals by copy: {sorted(copies)}"
for k, finals in copies.items():
    words = [w for f in finals for w in f]
    assert len(finals) <= 2 and edits(words, ref) <= 1, f"copy {k}: {finals}"
PY
# a partial comes before every final (the first line of each utterance is a partial)
[ "$(head -1 "$tmp/live.txt" | cut -c1-8)" = "partial:" ] || fail "example-live: no partial before the first final"
echo "examples ok ($nf finals, $n partials)"
