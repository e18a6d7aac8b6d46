#!/bin/sh
# python-vs-c.sh - the Python binding against `modelpool bench` on the same run (issue 14 targets):
# R concurrent requests of S seconds from Python threads (examples/gsm_lines.py, in the design's
# processor/model steps and with pool.transcribe) versus the C bench's threads, same clip, same model,
# same pool size, in alternating rounds. Targets: Python throughput within 5% of C's; Python peak RSS
# (interpreter + numpy + pool) at most C's + 40 MB.
#
# Usage: bench/python-vs-c.sh [BUILD_DIR] [ROUNDS] [POOL_SIZES]   defaults: build 3 "4 auto"
#   env: ARCH (default base: random wav2vec2-base weights) or MODEL (a model directory, e.g. models/digits),
#        SECONDS_PER_REQ (8), REQUESTS (30)
# Prints each run's figures and a summary of medians and ratios. Needs /usr/bin/python3 (numpy optional).
# On a shared machine compare audio_s_per_cpu_s (the engine's own speed) as well as wall throughput.
set -eu
build=${1:-build}
rounds=${2:-3}
pools=${3:-4 auto}
arch=${ARCH:-base}
src="--arch $arch"
[ -n "${MODEL:-}" ] && src="--model $MODEL"
secs=${SECONDS_PER_REQ:-8}
reqs=${REQUESTS:-30}
here=$(cd "$(dirname "$0")/.." && pwd)
cli="$build/modelpool"
[ -x "$cli" ] || { echo "python-vs-c: no $cli (build first)" >&2; exit 1; }
export MODELPOOL_LIBRARY="${MODELPOOL_LIBRARY:-$(cd "$build" && pwd)/libmodelpool.so}"
export PYTHONPATH="$here/python${PYTHONPATH:+:$PYTHONPATH}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One clip for both sides: the example's synthetic signal, written as a 16 kHz WAV.
/usr/bin/python3 -c "
import sys, wave, struct
sys.path.insert(0, '$here/examples')
import gsm_lines
x = gsm_lines.synthetic_clip(float('$secs'))
with wave.open('$tmp/clip.wav', 'wb') as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    w.writeframes(b''.join(struct.pack('<h', max(-32768, min(32767, int(round(v * 32767))))) for v in x))
"

cores=$(nproc)
for r in $(seq 1 "$rounds"); do
  for p in $pools; do
    n=$p
    [ "$p" = auto ] && n=$cores
    # shellcheck disable=SC2086
    "$cli" bench $src --requests "$reqs" --audio "$tmp/clip.wav" --workers "$n" --format json |
      /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin)[0]; d['side']='c'; d['round']=$r; print(json.dumps(d))" \
      >> "$tmp/runs.jsonl"
    for mode in design transcribe; do
      # shellcheck disable=SC2086
      /usr/bin/python3 "$here/examples/gsm_lines.py" $src --lines "$reqs" --pool "$n" \
        --audio "$tmp/clip.wav" --mode "$mode" --json |
        /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); d['side']='py-$mode'; d['workers']=$n; d['round']=$r; print(json.dumps(d))" \
        >> "$tmp/runs.jsonl"
    done
    tail -n 3 "$tmp/runs.jsonl"
  done
done

/usr/bin/python3 - "$tmp/runs.jsonl" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print("\n| pool | side | audio-s/s (median) | audio-s per CPU-s | peak RSS MB | vs C throughput | RSS - C |")
print("|---|---|---|---|---|---|---|")
ok = True
for w in sorted({r["workers"] for r in runs}):
    med = {}
    for side in ("c", "py-design", "py-transcribe"):
        rs = [r for r in runs if r["workers"] == w and r["side"] == side]
        if not rs:
            continue
        med[side] = {k: statistics.median(r[k] for r in rs) for k in ("audio_s_per_wall_s", "audio_s_per_cpu_s",
                                                                    "peak_rss_mb")}
        if any(r.get("errors") for r in rs):
            ok = False
    c = med["c"]
    for side, m in med.items():
        ratio = m["audio_s_per_wall_s"] / c["audio_s_per_wall_s"]
        drss = m["peak_rss_mb"] - c["peak_rss_mb"]
        print(f"| {w} | {side} | {m['audio_s_per_wall_s']:.2f} | {m['audio_s_per_cpu_s']:.2f} | "
              f"{m['peak_rss_mb']:.0f} | {ratio:.3f} | {drss:+.0f} |")
        if side != "c":
            ok &= ratio >= 0.95 and drss <= 40
print("\ntargets (throughput >= 0.95 x C, peak RSS <= C + 40 MB):", "met" if ok else "NOT met")
EOF
