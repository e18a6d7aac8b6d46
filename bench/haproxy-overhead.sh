#!/usr/bin/env bash
# What HAProxy (deploy/haproxy.cfg) costs: the same three `modelpool serve` processes driven by the same
# CLIENTS client threads, once through the balancer and once hit directly, in alternating rounds.
#
# QUIET WINDOW (the figures for README "Deploying" / BENCHMARKS.md; about 5 minutes of full CPU, both cores
# free for everyone, no CPU pinning):
#   bash bench/haproxy-overhead.sh build quiet
# runs, in order: (1) this comparison as `modelpool` runs now (OMP_WAIT_POLICY=PASSIVE); (2) the same with
# libgomp's default spinning (GOMP_SPINCOUNT=300000, what every run had before); (3) bench/openmp-wait.py
# (one server, spinning vs PASSIVE, kept-alive vs one connection per request: CPU per request); (4) what
# PASSIVE costs the latency of one worker with 2 threads on an idle machine: `modelpool bench --arch base
# --workers 1 --threads 2` both ways, alternating. Each step alone: the commands it prints.
#
# Fairness: every server is ready (/ready) and warmed (a few requests each, then one untimed round each way)
# before anything is timed; the direct clients spread their requests as leastconn does (each request goes
# to the server with the fewest requests in progress from this client process, ties in turn), so both
# sides load the servers the same way (the table shows each server's completed requests per round, from
# its /metrics); rounds run direct, haproxy, haproxy, direct, ... (ABBA) so a change in machine load falls
# on both sides alike. Both sides give a server the same concurrency: about CLIENTS / 3 requests each
# (HAProxy's maxconn 64 per server queues nothing at the balancer below 192 clients). Every request
# opens its own connection to its target; HAProxy keeps its connections to the servers open and reuses
# them, which is part of what it does. The client (Python http.client) sends the headers and the body in
# one write and no `Expect: 100-continue`, so the upload path is the same both ways.
#
# usage: bench/haproxy-overhead.sh [BUILD_DIR]
#   env: CLIENTS=30 SECONDS_PER_ROUND=15 ROUNDS=4 WORKERS=1 (per server) AUDIO=samples/phone-gsm.wav BEAM=0
#        START_WAIT_S=60 (bound on start-up: each server's /ready, HAProxy seeing all three UP, a probe)
# Prints per round: requests/s, errors, latency p50/p95, the CPU the servers and HAProxy used per
# request and the requests each server completed; then the medians of the rounds per side and the
# overhead ratio haproxy/direct (target: >= 0.90). The servers share this machine's cores with the
# clients and HAProxy, so absolute figures are for this machine only.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
if [ "${2:-}" = quiet ]; then
  self=$here/bench/haproxy-overhead.sh
  step() { echo; echo "### $*"; "$@"; }
  step env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY bash "$self" "$build"
  step env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=300000 bash "$self" "$build"
  step /usr/bin/python3 "$here/bench/openmp-wait.py" "$build" --rounds 3
  for mode in passive spin spin passive; do  # ABBA
    if [ $mode = spin ]; then set -- env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=300000
    else set -- env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY; fi
    step "$@" "$build/modelpool" bench --arch base --workers 1 --threads 2 --requests 4 --seconds 8 --format json
  done
  exit 0
fi
clients=${CLIENTS:-30} secs=${SECONDS_PER_ROUND:-15} rounds=${ROUNDS:-4} workers=${WORKERS:-1}
audio=${AUDIO:-$here/samples/phone-gsm.wav} beam=${BEAM:-0}
command -v haproxy >/dev/null || { echo "haproxy missing (scripts/install-deps.sh --test)"; exit 1; }
[ -x "$build/modelpool" ] || { echo "no $build/modelpool (build first)"; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
# all six ports at once, each socket held until all are bound: six different ports
read -r fe b1 b2 b3 stats live < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')
# deploy/haproxy.cfg on free ports, its socket in $tmp, no privilege drop; the AudioSocket section's
# servers stay absent (TCP only, not measured here)
sed -e "s#/run/haproxy/modelpool.sock#$tmp/haproxy.sock#" -e 's#^\s*log /dev/log local0##' \
    -e "s/\b8080\b/$fe/g" -e "s/\b8081\b/$b1/g" -e "s/\b8082\b/$b2/g" -e "s/\b8083\b/$b3/g" \
    -e "s/\b8090\b/$live/g" -e "s/\b8404\b/$stats/g" \
    -e '/^\s*\(user\|group\|chroot\) /d' "$here/deploy/haproxy.cfg" > "$tmp/haproxy.cfg"
haproxy -c -q -f "$tmp/haproxy.cfg" || { echo "haproxy rejects $tmp/haproxy.cfg"; exit 1; }
server_pids=()
for p in $b1 $b2 $b3; do
  OPENBLAS_NUM_THREADS=1 "$build/modelpool" serve --port "$p" --workers "$workers" 2> "$tmp/serve-$p.log" &
  pids+=($!) server_pids+=($!)
done
haproxy -db -f "$tmp/haproxy.cfg" > "$tmp/haproxy.log" 2>&1 &
haproxy_pid=$!
pids+=($haproxy_pid)

# Start-up, bounded (START_WAIT_S, default 60 s: a loaded machine loads models slowly): each server's
# /ready, then HAProxy's own view of the three (its checks need `rise 2` passes), then one request
# through the frontend. Every failure says which step and shows the log that explains it.
start_wait=${START_WAIT_S:-60}
deadline=$((SECONDS + start_wait))
for i in 0 1 2; do
  p=$(echo "$b1 $b2 $b3" | cut -d' ' -f$((i + 1)))
  until curl -sf -m 2 "http://127.0.0.1:$p/ready" > /dev/null; do
    kill -0 "${server_pids[$i]}" 2>/dev/null || { echo "server on port $p exited at start:"; cat "$tmp/serve-$p.log"; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "server on port $p not ready (/ready) after ${start_wait} s:"; cat "$tmp/serve-$p.log"; exit 1; }
    sleep 0.2
  done
done
# `show stat` on the admin socket: the status column of backend modelpool's servers (UP, DOWN, ...)
haproxy_states() {
  /usr/bin/python3 - "$tmp/haproxy.sock" <<'PY'
import csv, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
try:
    s.connect(sys.argv[1])
    s.sendall(b"show stat\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
except OSError as e:
    print(f"stats socket: {e}")
    sys.exit(0)
rows = csv.reader(data.decode().lstrip("# ").splitlines())
head = next(rows, [])
for r in rows:
    d = dict(zip(head, r))
    if d.get("pxname") == "modelpool" and d.get("svname", "").startswith("mp"):
        print(f'{d["svname"]}={d.get("status")}({d.get("check_status", "")} {d.get("check_desc", "")})')
PY
}
until [ "$(haproxy_states | grep -c '=UP(')" = 3 ]; do
  kill -0 "$haproxy_pid" 2>/dev/null || { echo "haproxy exited at start:"; cat "$tmp/haproxy.log"; exit 1; }
  [ $SECONDS -lt $deadline ] || {
    echo "HAProxy does not see the three servers up after ${start_wait} s (the servers' /ready answer 200):"
    haproxy_states; tail -20 "$tmp/haproxy.log"; exit 1; }
  sleep 0.2
done
code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -F response_format=text -F "file=@$audio" \
       "http://127.0.0.1:$fe/v1/audio/transcriptions" || true)
[ "$code" = 200 ] || { echo "a request through HAProxy got HTTP $code:"; haproxy_states; tail -20 "$tmp/haproxy.log"; exit 1; }

/usr/bin/python3 - "$fe" "$b1,$b2,$b3" "$clients" "$secs" "$rounds" "$audio" "$beam" "$workers" \
    "$(IFS=,; echo "${server_pids[*]}")" "$haproxy_pid" <<'EOF'
import http.client, itertools, os, re, statistics, sys, threading, time
fe, backends, clients, secs, rounds, audio, beam, workers = int(sys.argv[1]), \
    [int(p) for p in sys.argv[2].split(",")], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), \
    sys.argv[6], sys.argv[7], int(sys.argv[8])
server_pids, haproxy_pid = [int(p) for p in sys.argv[9].split(",")], int(sys.argv[10])
b = "bench-boundary"
body = (f'--{b}\r\nContent-Disposition: form-data; name="response_format"\r\n\r\ntext\r\n'
        f'--{b}\r\nContent-Disposition: form-data; name="beam"\r\n\r\n{beam}\r\n'
        f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n').encode() + \
    open(audio, "rb").read() + f"\r\n--{b}--\r\n".encode()
headers = {"Content-Type": f"multipart/form-data; boundary={b}", "Connection": "close"}
tick = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """user + system CPU seconds of a process, its threads included"""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


def completed(port):
    """requests this server's pool completed (its /metrics counter)"""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    return int(float(re.search(r'^modelpool_requests_total\{outcome="completed"\} (\S+)', text, re.M).group(1)))


def post(port):
    """one transcription on a new connection: (ok, text, seconds)"""
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request("POST", "/v1/audio/transcriptions", body=body, headers=headers)
        r = c.getresponse()
        text = r.read()
        c.close()
        return r.status == 200, text, time.monotonic() - t0
    except (OSError, http.client.HTTPException):
        return False, b"", time.monotonic() - t0


class LeastConn:
    """The direct side's balancer: the server with the fewest requests in progress from these clients,
    ties broken in turn (what `balance leastconn` does with equal counts)."""

    def __init__(self, ports):
        self.ports, self.active, self.lock, self.turn = ports, [0] * len(ports), threading.Lock(), itertools.count()

    def take(self):
        with self.lock:
            start = next(self.turn) % len(self.ports)
            order = [(start + k) % len(self.ports) for k in range(len(self.ports))]
            i = min(order, key=lambda j: self.active[j])
            self.active[i] += 1
            return i

    def give(self, i):
        with self.lock:
            self.active[i] -= 1


def run(side, seconds):
    """clients threads for `seconds`: requests/s, errors, latencies, CPU s per request (servers, HAProxy)"""
    lat, errors, texts = [], [0], set()
    lock = threading.Lock()
    pick = LeastConn(backends)
    stop = time.monotonic() + seconds

    def client():
        while time.monotonic() < stop:
            if side == "haproxy":
                ok, text, dt = post(fe)
            else:
                i = pick.take()
                try:
                    ok, text, dt = post(backends[i])
                finally:
                    pick.give(i)
            with lock:
                if ok:
                    lat.append(dt)
                    texts.add(text)
                else:
                    errors[0] += 1

    done0 = [completed(p) for p in backends]
    cpu0 = [cpu_s(p) for p in server_pids] + [cpu_s(haproxy_pid)]
    t0 = time.monotonic()
    ts = [threading.Thread(target=client) for _ in range(clients)]
    for t in ts: t.start()
    for t in ts: t.join()
    wall = time.monotonic() - t0
    cpu = [cpu_s(p) - c for p, c in zip(server_pids + [haproxy_pid], cpu0)]
    share = [completed(p) - d for p, d in zip(backends, done0)]
    n = len(lat)
    q = statistics.quantiles(lat, n=20) if n >= 2 else [float("nan")] * 19
    return {"rps": n / wall, "n": n, "errors": errors[0], "p50": statistics.median(lat) if lat else float("nan"),
            "p95": q[18], "server_cpu": sum(cpu[:-1]) / n if n else float("nan"),
            "haproxy_cpu": cpu[-1] / n if n else float("nan"), "texts": texts, "share": share}


# warm-up, untimed: each server's workers and first-use paths (a request per worker, twice), then a short
# round each way (the client paths, HAProxy's connections)
for port in backends:
    ws = [threading.Thread(target=post, args=(port,)) for _ in range(2 * workers)]
    for t in ws: t.start()
    for t in ws: t.join()
for side in ("direct", "haproxy"):
    w = run(side, min(3.0, secs))
    if w["errors"] or not w["n"]:
        sys.exit(f"warm-up {side}: {w['n']} answers, {w['errors']} errors: is everything up?")

print(f"{clients} clients, {len(backends)} servers x {workers} worker(s), {secs:.0f} s per round, {rounds} rounds "
      f"per side (ABBA), beam {beam}, one connection per request")
print("| round | side | req/s | errors | p50 s | p95 s | server CPU ms/req | HAProxy CPU ms/req | per server |")
print("|---|---|---|---|---|---|---|---|---|")
res = {"direct": [], "haproxy": []}
texts = set()
for r in range(rounds):
    for side in (("direct", "haproxy") if r % 2 == 0 else ("haproxy", "direct")):
        m = run(side, secs)
        res[side].append(m)
        texts |= m["texts"]
        print(f"| {r + 1} | {side} | {m['rps']:.1f} | {m['errors']} | {m['p50']:.3f} | {m['p95']:.3f} | "
              f"{1000 * m['server_cpu']:.1f} | {1000 * m['haproxy_cpu']:.2f} | {'/'.join(map(str, m['share']))} |",
              flush=True)

med = {s: {k: statistics.median(m[k] for m in ms) for k in ("rps", "p50", "p95", "server_cpu", "haproxy_cpu")}
       for s, ms in res.items()}
print("\n| side | req/s (median) | p50 s | p95 s | server CPU ms/req | HAProxy CPU ms/req | errors |")
print("|---|---|---|---|---|---|---|")
for s, m in med.items():
    print(f"| {s} | {m['rps']:.1f} | {m['p50']:.3f} | {m['p95']:.3f} | {1000 * m['server_cpu']:.1f} | "
          f"{1000 * m['haproxy_cpu']:.2f} | {sum(x['errors'] for x in res[s])} |")
ratio = med["haproxy"]["rps"] / med["direct"]["rps"]
per_round = [h["rps"] / d["rps"] for h, d in zip(res["haproxy"], res["direct"])]
print(f"\nthroughput haproxy/direct: {ratio:.3f} (ratio of medians; per round {', '.join(f'{x:.3f}' for x in per_round)})")
print(f"latency haproxy/direct: p50 {med['haproxy']['p50'] / med['direct']['p50']:.3f}, "
      f"p95 {med['haproxy']['p95'] / med['direct']['p95']:.3f}")
if len(texts) != 1:
    print(f"WARNING: {len(texts)} different transcripts: {sorted(texts)[:3]}")
errors = sum(x["errors"] for ms in res.values() for x in ms)
print("target (throughput >= 0.90 x direct, no errors):", "met" if ratio >= 0.90 and not errors else "NOT met")
EOF
