#!/usr/bin/env bash
# Loopback tests of `modelpool serve` with real clients: curl, and the official OpenAI SDK (npm) when installed.
# usage: test-server.sh MODELPOOL_BIN CASE, or test-server.sh --list (the cases; ctest runs each)
# Uses a random-weight "tiny" model: what matters is that the server returns exactly what the CLI returns.
set -euo pipefail
cases="curl openai-sdk interleave"
if [ "${1:-}" = --list ]; then printf '%s\n' $cases; exit 0; fi
case " $cases " in *" ${2:-?} "*) ;; *) echo "no such case: ${2:-} (--list names them)" >&2; exit 2;; esac
trap 'echo "FAIL: test-server.sh line $LINENO: a command failed (status $?)" >&2; cat "${log:-/dev/null}" >&2' ERR
bin=$1
case_=$2
here=$(cd "$(dirname "$0")" && pwd)
wav=$here/data/ref/inputs/in1.wav
tmp=$(mktemp -d)
log=$tmp/server.log
pid=
cleanup() {
  # a server that ignores SIGTERM must not hang the test: KILL after 5 s
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

command -v curl >/dev/null || { echo "skipped: curl missing"; exit 77; }
if [ "$case_" = openai-sdk ] && [ ! -d "$here/server-js/node_modules/openai" ]; then
  echo "skipped: run 'npm ci' in tests/server-js for the OpenAI SDK test"; exit 77
fi

expected=$("$bin" transcribe --arch tiny "$wav")
printf '\\data\\\nngram 1=4\n\n\\1-grams:\n-1.0 <s>\n-1.0 </s>\n-0.7 A\n-0.7 I\n\n\\end\\\n' > "$tmp/lm.arpa"
printf 'A\nI\nAN\n' > "$tmp/words.txt"
if [ "$case_" = curl ]; then
  # a decoding resource that does not load stops the server before it listens, naming the file
  for opt in --lm --lexicon; do
    if "$bin" serve --arch tiny --port 0 $opt "$tmp/missing.txt" 2>"$tmp/err"; then fail "serve $opt missing file started"; fi
    grep -q "missing.txt" "$tmp/err" || fail "serve $opt: $(cat "$tmp/err")"
  done
fi
serve_args=(--workers 2 --max-body-mb 1 --max-audio-s 3 --lm "$tmp/lm.arpa")
# interleave: the long upload below holds ~46 MB (8 MB upload buffer + 38 MB of decoded 16 kHz samples)
[ "$case_" = interleave ] && serve_args=(--workers 1 --max-body-mb 16 --max-audio-s 1200 --max-inflight-mb 64)
"$bin" serve --arch tiny --port 0 "${serve_args[@]}" 2>"$log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
port=$(grep -o '127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2)
[ -n "$port" ] || fail "server did not start"
url=http://127.0.0.1:$port

if [ "$case_" = openai-sdk ]; then
  node "$here/server-js/transcribe.mjs" "$url/v1" "$wav" "$expected" || fail "OpenAI SDK check"
elif [ "$case_" = interleave ]; then
  # One worker. A ~10-minute upload runs as 20 s chunks, each on a worker leased for that chunk
  # alone, so a short request sent meanwhile is answered while the long one is still running.
  sox "$wav" -r 8000 -e mu-law "$tmp/long.wav" repeat 249          # 250 x 2.37 s = 593 s
  long_expected=$("$bin" transcribe --arch tiny "$tmp/long.wav")
  curl -sf -F file=@"$tmp/long.wav" -F response_format=text "$url/v1/audio/transcriptions" > "$tmp/long.txt" &
  lpid=$!
  busy=
  for _ in $(seq 400); do
    curl -sf "$url/metrics" > "$tmp/metrics" || true
    grep -q '^modelpool_workers_busy 1$' "$tmp/metrics" && { busy=1; break; }
    kill -0 "$lpid" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$busy" ] || fail "long request never occupied the worker"
  # the same scrape that saw the worker busy shows the memory the long request holds (checked here,
  # while it certainly runs: on a slow machine it may be over by the time of a later scrape)
  grep -q '^modelpool_inflight_bytes [1-9]' "$tmp/metrics" || fail "inflight_bytes while busy"
  got=$(curl -sf -F file=@"$wav" -F response_format=text "$url/v1/audio/transcriptions") || fail "short request failed"
  [ "$got" = "$expected" ] || fail "short request: $got != $expected"
  # a second long upload would take the requests' memory past --max-inflight-mb 64: 503 at once
  code=$(curl -s -o "$tmp/body" -w '%{http_code}' -F file=@"$tmp/long.wav" "$url/v1/audio/transcriptions")
  [ "$code" = 503 ] && grep -q server_busy "$tmp/body" || fail "second long upload over the memory budget -> $code"
  kill -0 "$lpid" 2>/dev/null || fail "the short request was answered only after the long one finished"
  wait "$lpid" || fail "long request failed"
  [ "$(cat "$tmp/long.txt")" = "$long_expected" ] || fail "long upload transcript differs from the CLI's"
  # given back when MHD completes the request, which may be just after the client has its answer
  freed=
  for _ in $(seq 50); do b=$(curl -sf "$url/metrics") && grep -q '^modelpool_inflight_bytes 0$' <<<"$b" && { freed=1; break; }; sleep 0.1; done
  [ -n "$freed" ] || fail "memory budget not given back"
  # stream=true: Server-Sent Events; the deltas add up to the final text, which is the CLI's
  sox "$wav" "$tmp/long30.wav" repeat 29                      # 30 x 2.37 s = 71 s: several 20 s chunks
  want=$("$bin" transcribe --arch tiny "$tmp/long30.wav")
  curl -sfN -F file=@"$tmp/long30.wav" -F stream=true "$url/v1/audio/transcriptions" > "$tmp/sse" || fail "stream request"
  python3 - "$tmp/sse" "$want" <<'PY' || fail "event stream: $(head -c 400 "$tmp/sse")"
import json, sys
raw = open(sys.argv[1]).read()
assert raw.endswith("\n\n"), "events end with a blank line"
ev = [json.loads(b[len("data: "):]) for b in raw.split("\n\n") if b]
deltas = [e["delta"] for e in ev if e["type"] == "transcript.text.delta"]
assert ev[-1]["type"] == "transcript.text.done" and sum(e["type"] == "transcript.text.done" for e in ev) == 1, ev[-1]
assert len(deltas) >= 2, f"{len(deltas)} deltas for 71 s"
assert "".join(deltas) == ev[-1]["text"] == sys.argv[2], "deltas, done text and the CLI's text differ"
PY
else
  # json (default), text, verbose_json all carry the CLI's transcript
  got=$(curl -sf -F file=@"$wav" -F model=tiny "$url/v1/audio/transcriptions")
  [ "$got" = "{\"text\":\"$expected\"}" ] || fail "json: $got != $expected"
  got=$(curl -sf -F file=@"$wav" -F response_format=text "$url/v1/audio/transcriptions")
  [ "$got" = "$expected" ] || fail "text: $got"
  got=$(curl -sf -F file=@"$wav" -F response_format=verbose_json "$url/v1/audio/transcriptions")
  grep -q "\"text\":\"$expected\"" <<<"$got" || fail "verbose_json text: $got"
  grep -q '"words":\[{"word":' <<<"$got" || fail "verbose_json words: $got"
  grep -q '"duration":2.37' <<<"$got" || fail "verbose_json duration: $got"
  # stream=true on a short file: one delta with the whole text, then done
  got=$(curl -sfN -F file=@"$wav" -F stream=true "$url/v1/audio/transcriptions")
  [ "$got" = "data: {\"type\":\"transcript.text.delta\",\"delta\":\"$expected\"}

data: {\"type\":\"transcript.text.done\",\"text\":\"$expected\"}" ] || fail "short stream: $got"
  for bad in "stream=maybe" "stream=true -F response_format=srt"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -F file=@"$wav" -F $bad "$url/v1/audio/transcriptions")
    [ "$code" = 400 ] || fail "$bad -> $code"
  done
  # subtitles: exactly the CLI's cues
  for f in srt vtt; do
    got=$(curl -sf -F file=@"$wav" -F response_format=$f "$url/v1/audio/transcriptions") || fail "$f request"
    [ "$got" = "$("$bin" transcribe --arch tiny --format $f "$wav")" ] || fail "$f: $got"
  done
  # audio options: one side of a stereo call, headerless mu-law; each equal to the CLI with the same option
  sox -M "$wav" "$here/data/ref/inputs/in0.wav" "$tmp/stereo.wav"
  s0=$("$bin" transcribe --arch tiny --channel 0 "$tmp/stereo.wav"); s1=$("$bin" transcribe --arch tiny --channel 1 "$tmp/stereo.wav")
  [ "$s0" != "$s1" ] || fail "fixture: both channels read the same"
  got=$(curl -sf -F file=@"$tmp/stereo.wav" -F channel=0 -F response_format=text "$url/v1/audio/transcriptions")
  [ "$got" = "$s0" ] || fail "channel=0: $got"
  got=$(curl -sf -F file=@"$tmp/stereo.wav" -F channel=1 -F response_format=text "$url/v1/audio/transcriptions")
  [ "$got" = "$s1" ] || fail "channel=1: $got"
  sox "$wav" -t raw -e mu-law -r 8000 "$tmp/call.ul"
  want=$("$bin" transcribe --arch tiny --raw-format mulaw --raw-rate 8000 "$tmp/call.ul")
  got=$(curl -sf -F file=@"$tmp/call.ul" -F raw_format=mulaw -F raw_rate=8000 -F response_format=text \
        "$url/v1/audio/transcriptions") || fail "raw mu-law request"
  [ "$got" = "$want" ] || fail "raw mu-law: $got != $want"
  for bad in channel=x channel=-1 raw_format=mp4 raw_rate=8000 raw_rate=12; do
    code=$(curl -s -o "$tmp/body" -w '%{http_code}' -F file=@"$wav" -F "$bad" "$url/v1/audio/transcriptions")
    [ "$code" = 400 ] && grep -q bad_audio_option "$tmp/body" || fail "$bad -> $code $(cat "$tmp/body")"
  done
  code=$(curl -s -o "$tmp/body" -w '%{http_code}' -F file=@"$wav" -F channel=3 "$url/v1/audio/transcriptions")
  [ "$code" = 400 ] && grep -q "channel 3 requested but the audio has 1 channel" "$tmp/body" \
    || fail "channel 3 of a mono file -> $code $(cat "$tmp/body")"
  # decoding chosen per request: each must give what the CLI gives with the same settings
  # (the server was started with --lm, which acts only in beam search, and by default)
  post() { curl -sf -F file=@"$wav" -F response_format=text "$@" "$url/v1/audio/transcriptions"; }
  cli() { "$bin" transcribe --arch tiny "$@" "$wav"; }
  [ "$(post -F beam=0)" = "$expected" ] || fail "beam=0 is not greedy"
  want=$(cli --beam 4 --lm "$tmp/lm.arpa"); [ "$(post -F beam=4)" = "$want" ] || fail "beam 4 with the server's LM"
  # with a word list the LM decides between words: on, off and re-weighted must all differ
  words=(-F beam=8 -F 'words=A, I AN')
  w_on=$(cli --beam 8 --lexicon "$tmp/words.txt" --lm "$tmp/lm.arpa")
  w_off=$(cli --beam 8 --lexicon "$tmp/words.txt")
  w_ab=$(cli --beam 8 --lexicon "$tmp/words.txt" --lm "$tmp/lm.arpa" --lm-alpha 1 --lm-beta 3)
  [ "$w_on" != "$w_off" ] && [ "$w_on" != "$w_ab" ] || fail "fixture: the LM does not change the answer"
  got=$(post "${words[@]}"); [ "$got" = "$w_on" ] || fail "words: $got != $w_on"
  for w in $got; do case $w in A|I|AN) ;; *) fail "word '$w' outside the request's word list";; esac; done
  [ "$(post "${words[@]}" -F lm=off)" = "$w_off" ] || fail "lm=off"
  [ "$(post "${words[@]}" -F lm_alpha=1 -F lm_beta=3)" = "$w_ab" ] || fail "lm_alpha/lm_beta"
  want=$(cli --hotword 'AN:3' --lm "$tmp/lm.arpa"); [ "$(post -F hotwords=AN:3)" = "$want" ] || fail "hotwords"
  for bad in beam=-1 beam=x hotwords=A:x lexicon=maybe lm=yes lm_alpha=1e9 words=A1; do
    code=$(curl -s -o "$tmp/body" -w '%{http_code}' -F file=@"$wav" -F "$bad" "$url/v1/audio/transcriptions")
    [ "$code" = 400 ] && grep -q bad_decoding_option "$tmp/body" || fail "$bad -> $code $(cat "$tmp/body")"
  done
  head -c 40000 /dev/zero | tr '\0' 'A' > "$tmp/longfield"
  code=$(curl -s -o "$tmp/body" -w '%{http_code}' -F file=@"$wav" -F words="<$tmp/longfield" "$url/v1/audio/transcriptions")
  [ "$code" = 400 ] && grep -q field_too_long "$tmp/body" || fail "over-long field -> $code $(cat "$tmp/body")"
  # errors: status codes and OpenAI-style error bodies
  code=$(curl -s -o "$tmp/body" -w '%{http_code}' -F file=@"$here/CMakeLists.txt" "$url/v1/audio/transcriptions")
  [ "$code" = 415 ] && grep -q '"code":"MP_ERR_AUDIO_FORMAT"' "$tmp/body" || fail "bad audio -> $code $(cat "$tmp/body")"
  # the message names the upload by its filename, once (not "<memory>")
  [ "$(grep -o 'CMakeLists.txt' "$tmp/body" | wc -l)" = 1 ] && ! grep -q '<memory>' "$tmp/body" \
    || fail "bad audio message: $(cat "$tmp/body")"
  code=$(curl -s -o "$tmp/body" -w '%{http_code}' -F model=tiny "$url/v1/audio/transcriptions")
  [ "$code" = 400 ] && grep -q missing_file "$tmp/body" || fail "no file -> $code"
  code=$(curl -s -o /dev/null -w '%{http_code}' -F file=@"$wav" -F response_format=docx "$url/v1/audio/transcriptions")
  [ "$code" = 400 ] || fail "response_format=docx -> $code"
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{}' "$url/v1/audio/transcriptions")
  [ "$code" = 400 ] || fail "json body -> $code"
  code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/audio/transcriptions")
  [ "$code" = 405 ] || fail "GET transcriptions -> $code"
  code=$(curl -s -o /dev/null -w '%{http_code}' "$url/nope")
  [ "$code" = 404 ] || fail "404 -> $code"
  sox "$wav" "$wav" "$tmp/long.wav"   # 4.74 s, over --max-audio-s 3
  code=$(curl -s -o "$tmp/body" -w '%{http_code}' -F file=@"$tmp/long.wav" "$url/v1/audio/transcriptions")
  [ "$code" = 413 ] && grep -q audio_too_long "$tmp/body" || fail "audio over --max-audio-s -> $code $(cat "$tmp/body")"
  head -c 2000000 /dev/urandom > "$tmp/big.wav"
  code=$(curl -s -o /dev/null -w '%{http_code}' -F file=@"$tmp/big.wav" "$url/v1/audio/transcriptions")
  [ "$code" = 413 ] || fail "2 MB over a 1 MB limit -> $code"
  code=$(curl -s -o /dev/null -w '%{http_code}' -F file=@"$wav" -F prompt="<$tmp/big.wav" "$url/v1/audio/transcriptions")
  [ "$code" = 413 ] || fail "2 MB text field over a 1 MB limit -> $code"
  # health and metrics reflect the requests above
  b=$(curl -sf "$url/health") && grep -q '"status":"ok"' <<<"$b" || fail "health"
  b=$(curl -sf "$url/ready") && grep -q '"status":"ready"' <<<"$b" || fail "ready"
  b=$(curl -sf "$url/v1/models") && grep -q '"id":"tiny"' <<<"$b" || fail "models"
  m=$(curl -sf "$url/metrics")
  grep -q '^modelpool_pool_size 2$' <<<"$m" || fail "metrics pool size"
  grep -q '^modelpool_requests_total{outcome="completed"} 15$' <<<"$m" || fail "metrics completed: $(echo "$m" | grep requests_total)"
  grep -q '^modelpool_http_responses_total{class="4xx"} [1-9]' <<<"$m" || fail "metrics 4xx"
  # the wait histogram holds the same 15 granted leases: cumulative buckets ending in +Inf = _count
  grep -q '^modelpool_queue_wait_seconds_count 15$' <<<"$m" || fail "wait histogram count: $(echo "$m" | grep queue_wait)"
  grep -q '^modelpool_queue_wait_seconds_bucket{le="+Inf"} 15$' <<<"$m" || fail "wait histogram +Inf bucket"
  grep -q '^modelpool_queue_wait_seconds_bucket{le="0.001"} ' <<<"$m" || fail "wait histogram 1 ms bucket"
  echo "$m" | grep '^modelpool_queue_wait_seconds_bucket' | awk '{ if ($2 < prev) exit 1; prev = $2 }' ||
    fail "wait histogram buckets not cumulative: $(echo "$m" | grep queue_wait)"
  if command -v promtool > /dev/null; then
    out=$(echo "$m" | promtool check metrics 2>&1) || fail "promtool check metrics: $out"
  fi
  # 8 concurrent requests all succeed with the same text
  for i in $(seq 8); do curl -sf -F file=@"$wav" -F response_format=text "$url/v1/audio/transcriptions" > "$tmp/c$i" & done
  wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
  for i in $(seq 8); do [ "$(cat "$tmp/c$i")" = "$expected" ] || fail "concurrent request $i: $(cat "$tmp/c$i")"; done
fi

if [ "$case_" = interleave ]; then
  # SIGTERM while a long upload and a long event stream run: both finish with their full transcripts
  # (each chunk still gets a worker), a request arriving meanwhile gets 503, the server exits 0.
  curl -sf -F file=@"$tmp/long.wav" -F response_format=text "$url/v1/audio/transcriptions" > "$tmp/drain1.txt" &
  d1=$!
  curl -sfN -F file=@"$tmp/long30.wav" -F stream=true "$url/v1/audio/transcriptions" > "$tmp/drain2.sse" &
  d2=$!
  for _ in $(seq 400); do b=$(curl -sf "$url/metrics") && grep -q '^modelpool_http_requests_active 2$' <<<"$b" && break; sleep 0.05; done
  kill -TERM "$pid"
  sleep 0.3
  code=$(curl -s -o "$tmp/body" -w '%{http_code}' -F file=@"$wav" "$url/v1/audio/transcriptions")
  [ "$code" = 503 ] || fail "request during the drain -> $code $(cat "$tmp/body")"
  # liveness stays 200, readiness turns 503 (with Retry-After, as every 503)
  code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$url/health")
  [ "$code" = 200 ] && grep -q '"status":"draining"' "$tmp/body" || fail "/health during the drain -> $code"
  curl -s -D "$tmp/hdr" -o "$tmp/body" "$url/ready" >/dev/null
  grep -q '^HTTP/1.1 503' "$tmp/hdr" && grep -qi '^Retry-After: [0-9]' "$tmp/hdr" && grep -q draining "$tmp/body" \
    || fail "/ready during the drain: $(cat "$tmp/hdr" "$tmp/body")"
  wait "$d1" || fail "long upload cut by SIGTERM"
  [ "$(cat "$tmp/drain1.txt")" = "$long_expected" ] || fail "long upload during the drain: wrong transcript"
  wait "$d2" || fail "event stream cut by SIGTERM"
  grep -q "\"type\":\"transcript.text.done\",\"text\":\"$want\"" "$tmp/drain2.sse" || fail "event stream during the drain"
fi
# SIGTERM: clean exit, status 0
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then fail "server still running 10 s after SIGTERM"; fi
wait "$pid"; rc=$?; pid=
[ "$rc" = 0 ] || fail "server exit status $rc"
echo "server $case_ ok"
