#!/usr/bin/env bash
# Every telephony format of one utterance transcribes like the clean 16-bit WAV, with the embedded model.
# The utterance is synthesized here (espeak-ng, voice en-us+f4: a held-out voice the model never trained on) and
# encoded with sox. Lossless variants (FLAC, 44.1 kHz stereo, raw s16le) decode to the same samples after
# resampling, so their greedy transcripts must be byte-identical. Lossy codecs (G.711, GSM 06.10, AMR-NB, OGG,
# MP3) change the waveform (SNR 4-38 dB, test-audio measures it), so for them the test compares what a telephony
# deployment reads out: the transcript constrained to the model's word list (beam 16), which may differ from the
# clean one by at most one word (a lossy codec can flip one close call; a decoding bug - wrong rate, channel or
# codec - garbles many words). Exit 77 without the model.
# usage: test-formats.sh MODELPOOL_BIN
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$here/models/digits/model.safetensors" ] || { echo "skipped: no embedded model"; exit 77; }
for t in espeak-ng sox; do command -v $t >/dev/null || { echo "skipped: $t missing"; exit 77; }; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
espeak-ng -v en-us+f4 -s 140 -w tts.wav "four one five, two zero nine, seven seven three one"
sox -D tts.wav -r 8000 -c 1 -b 16 clean.wav   # -D: no dither, so the test audio is the same every run
sox clean.wav flac.flac
sox -D clean.wav -r 44100 -c 2 stereo44.wav
sox clean.wav -t raw raw.s16
sox clean.wav -e u-law ulaw.wav
sox clean.wav -e a-law alaw.wav
sox clean.wav -e gsm-full-rate gsm.wav
sox clean.wav gsm.gsm
sox clean.wav -t amr-nb -C 7 amr.amr
sox clean.wav ogg.ogg
sox clean.wav mp3.mp3 2>/dev/null || rm -f mp3.mp3   # only if this sox has an MP3 encoder

# word-level edit distance between two transcripts
words_apart() {
  python3 - "$1" "$2" <<'PY'
import sys
a, b = sys.argv[1].split(), sys.argv[2].split()
d = list(range(len(b) + 1))
for i in range(1, len(a) + 1):
    p, d[0] = d[0], i
    for j in range(1, len(b) + 1):
        p, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, p + (a[i - 1] != b[j - 1]))
print(d[len(b)])
PY
}

fail=0
want=$("$bin" transcribe clean.wav)
want_lex=$("$bin" transcribe --beam 16 clean.wav)
echo "clean:        $want | $want_lex"
[ -n "$want_lex" ] || { echo "FAIL: empty transcript of the clean WAV"; exit 1; }
for f in flac.flac stereo44.wav; do
  got=$("$bin" transcribe "$f")
  echo "$f: $got"
  [ "$got" = "$want" ] || { echo "FAIL: $f greedy differs from clean"; fail=1; }
done
got=$("$bin" transcribe --raw-format s16le --raw-rate 8000 raw.s16)
[ "$got" = "$want" ] || { echo "FAIL: raw s16le: $got"; fail=1; }
for f in ulaw.wav alaw.wav gsm.wav gsm.gsm amr.amr ogg.ogg $( [ -f mp3.mp3 ] && echo mp3.mp3 ); do
  got=$("$bin" transcribe --beam 16 "$f")
  echo "$f: $got"
  [ "$(words_apart "$want_lex" "$got")" -le 1 ] || { echo "FAIL: $f word-list transcript differs from clean"; fail=1; }
done
# the same bytes through standard input, named nothing: the format comes from the content, so the answer is
# exactly the one from the file
got=$("$bin" transcribe --beam 16 - < amr.amr)
[ "$got" = "$("$bin" transcribe --beam 16 amr.amr)" ] || { echo "FAIL: AMR on stdin: $got"; fail=1; }
exit $fail
