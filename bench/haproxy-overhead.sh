#!/usr/bin/env bash
# Throughput through HAProxy (deploy/haproxy.cfg) vs the same three servers hit directly, in alternating
# rounds (direct, haproxy, direct, ...) so a change in machine load affects both sides alike.
# usage: bench/haproxy-overhead.sh [BUILD_DIR]
#   env: CLIENTS=30 SECONDS_PER_ROUND=15 ROUNDS=3 WORKERS=1 (per server) AUDIO=samples/phone-gsm.wav BEAM=0
# Prints requests/s per round and the median ratio haproxy/direct (target: >= 0.90). The three servers
# share this machine's cores with the clients and HAProxy, so absolute figures are for this machine only.
# Run it on a quiet machine (~2 x ROUNDS x SECONDS_PER_ROUND seconds of full CPU).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
clients=${CLIENTS:-30} secs=${SECONDS_PER_ROUND:-15} rounds=${ROUNDS:-3} workers=${WORKERS:-1}
audio=${AUDIO:-$here/samples/phone-gsm.wav} beam=${BEAM:-0}
command -v haproxy >/dev/null || { echo "haproxy missing (scripts/install-deps.sh --test)"; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

fe=$(free_port) b1=$(free_port) b2=$(free_port) b3=$(free_port)
sed -e "s#/run/haproxy/modelpool.sock#$tmp/haproxy.sock#" -e 's#^\s*log /dev/log local0##' \
    -e "s/\b8080\b/$fe/g" -e "s/\b8081\b/$b1/g" -e "s/\b8082\b/$b2/g" -e "s/\b8083\b/$b3/g" \
    -e "s/\b8090\b/$(free_port)/g" -e "s/\b8404\b/$(free_port)/g" \
    -e '/^\s*\(user\|group\|chroot\) /d' "$here/deploy/haproxy.cfg" > "$tmp/haproxy.cfg"
for p in $b1 $b2 $b3; do
  OPENBLAS_NUM_THREADS=1 "$build/modelpool" serve --port "$p" --workers "$workers" 2> "$tmp/serve-$p.log" &
  pids+=($!)
done
haproxy -db -f "$tmp/haproxy.cfg" > "$tmp/haproxy.log" 2>&1 &
pids+=($!)
for p in $b1 $b2 $b3; do
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$p/health" > /dev/null && break; sleep 0.1; done
done
sleep 3   # HAProxy's checks: rise 2

/usr/bin/python3 - "$fe" "$b1,$b2,$b3" "$clients" "$secs" "$rounds" "$audio" "$beam" <<'EOF'
import statistics, sys, threading, time, urllib.request
fe, backends, clients, secs, rounds, audio, beam = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), \
    float(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
b = "bench-boundary"
body = (f'--{b}\r\nContent-Disposition: form-data; name="response_format"\r\n\r\ntext\r\n'
        f'--{b}\r\nContent-Disposition: form-data; name="beam"\r\n\r\n{beam}\r\n'
        f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n').encode() + \
    open(audio, "rb").read() + f"\r\n--{b}--\r\n".encode()

def run(ports):
    """clients threads for secs seconds; client i always uses ports[i % len(ports)]"""
    done, errors, stop = [0], [0], time.time() + secs
    lock = threading.Lock()
    def client(port):
        while time.time() < stop:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/audio/transcriptions", data=body,
                                         headers={"Content-Type": f"multipart/form-data; boundary={b}"})
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    r.read()
                    ok = r.status == 200
            except Exception:
                ok = False
            with lock:
                (done if ok else errors)[0] += 1
    t0 = time.time()
    ts = [threading.Thread(target=client, args=(ports[i % len(ports)],)) for i in range(clients)]
    for t in ts: t.start()
    for t in ts: t.join()
    return done[0] / (time.time() - t0), errors[0]

ratios = []
print(f"{clients} clients, {secs:.0f} s per round, {rounds} rounds, beam {beam}")
for r in range(rounds):
    d, de = run(backends)
    h, he = run([fe])
    ratios.append(h / d)
    print(f"round {r + 1}: direct {d:7.1f} req/s ({de} errors)   haproxy {h:7.1f} req/s ({he} errors)   ratio {h / d:.3f}")
print(f"median ratio haproxy/direct: {statistics.median(ratios):.3f}")
EOF
