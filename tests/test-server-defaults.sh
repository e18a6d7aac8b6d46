#!/usr/bin/env bash
# The README's server example with the embedded model: a plain upload (no decoding fields) answers the
# sample's digits through the model's decoding.json, and beam=0 is greedy, not the model's default beam.
# usage: test-server-defaults.sh MODELPOOL_BIN   (exit 77 without the model or curl)
set -euo pipefail
bin=$1
root=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$root/models/digits/decoding.json" ] || { echo "skipped: no embedded model with decoding.json"; exit 77; }
command -v curl >/dev/null || { echo "skipped: curl missing"; exit 77; }
tmp=$(mktemp -d)
log=$tmp/server.log
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- server log" >&2; cat "$log" >&2; exit 1; }

"$bin" serve --model "$root/models/digits" --port 0 --workers 1 2>"$log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
port=$(grep -o '127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2)
[ -n "$port" ] || fail "server did not start"
url=http://127.0.0.1:$port/v1/audio/transcriptions
wav=$root/samples/phone-gsm.wav
want=$(cat "$root/samples/phone-gsm.txt")

got=$(curl -sf -F file=@"$wav" "$url") || fail "plain request"
[ "$got" = "{\"text\":\"$want\"}" ] || fail "plain request: $got, want $want"
# explicit greedy = width 1 without a word list (also greedy); both keep the model's pause split
g0=$(curl -sf -F file=@"$wav" -F beam=0 -F response_format=text "$url") || fail "beam=0"
g1=$(curl -sf -F file=@"$wav" -F beam=1 -F lexicon=none -F response_format=text "$url") || fail "beam=1"
[ "$g0" = "$g1" ] || fail "beam=0 gave '$g0', greedy gives '$g1'"
echo "plain: $got; beam=0: $g0"
