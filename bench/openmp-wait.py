#!/usr/bin/python3
"""What libgomp's spinning costs `modelpool serve`, by connection pattern.

Two servers of the embedded model side by side, `--workers 1` (so 2 OpenMP threads per forward pass on a
2-core machine): one with libgomp's default spinning (GOMP_SPINCOUNT=300000, what every run had before
`modelpool` set OMP_WAIT_POLICY=PASSIVE), one as `modelpool` runs now (PASSIVE). Each round sends, to each
server in turn (order swapped every round), the same requests in two patterns: one client, one kept-alive
connection; and 10 clients each opening a new connection per request (curl-style, what bench/haproxy-
overhead.sh's direct side does). Prints the server's CPU (user + system, from /proc) and its lease time
(modelpool_busy_seconds_total from /metrics) per request, and the medians over the rounds.

  /usr/bin/python3 bench/openmp-wait.py [BUILD_DIR] [--rounds 3] [--audio samples/phone-gsm.wav]
"""
import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("build", nargs="?", default=os.path.join(here, "build"))
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--audio", default=os.path.join(here, "samples", "phone-gsm.wav"))
a = ap.parse_args()

B = "bench-boundary"
BODY = (f'--{B}\r\nContent-Disposition: form-data; name="response_format"\r\n\r\ntext\r\n'
        f'--{B}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n').encode() + \
    open(a.audio, "rb").read() + f"\r\n--{B}--\r\n".encode()
TICK = os.sysconf("SC_CLK_TCK")
PATTERNS = (("1 client, kept alive", 1, 8, True), ("10 clients, new connections", 10, 2, False))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def busy(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    t = c.getresponse().read().decode()
    c.close()
    g = lambda k: float(re.search(rf"^{re.escape(k)} (\S+)", t, re.M).group(1))
    return g("modelpool_busy_seconds_total"), g('modelpool_requests_total{outcome="completed"}')


def start(spin):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if spin:
        env["GOMP_SPINCOUNT"] = "300000"
    port = free_port()
    p = subprocess.Popen([os.path.join(a.build, "modelpool"), "serve", "--port", str(port), "--workers", "1"],
                         env=env, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ready")
            if c.getresponse().status == 200:
                return p, port
        except OSError:
            pass
        time.sleep(0.1)
    p.kill()
    sys.exit(f"server on {port} not ready after 30 s")


def run(port, pid, clients, per_client, keep):
    def client():
        c = None
        for _ in range(per_client):
            c = c or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            h = {"Content-Type": f"multipart/form-data; boundary={B}"}
            if not keep:
                h["Connection"] = "close"
            c.request("POST", "/v1/audio/transcriptions", body=BODY, headers=h)
            r = c.getresponse()
            r.read()
            if r.status != 200:
                sys.exit(f"HTTP {r.status}")
            if not keep:
                c.close()
                c = None

    c0, (b0, n0) = cpu_s(pid), busy(port)
    ts = [threading.Thread(target=client) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    c1, (b1, n1) = cpu_s(pid), busy(port)
    return 1000 * (c1 - c0) / (n1 - n0), 1000 * (b1 - b0) / (n1 - n0)


servers = {"spinning (GOMP_SPINCOUNT=300000)": start(True), "PASSIVE (modelpool's default)": start(False)}
try:
    for name, (p, port) in servers.items():  # warm-up, untimed
        run(port, p.pid, 2, 1, True)
    res = {(s, pat[0]): [] for s in servers for pat in PATTERNS}
    print("| round | server | pattern | CPU ms/req | lease ms/req |\n|---|---|---|---|---|")
    for r in range(a.rounds):
        order = list(servers.items()) if r % 2 == 0 else list(servers.items())[::-1]
        for name, (p, port) in order:
            for pat, clients, per, keep in PATTERNS:
                cpu, lease = run(port, p.pid, clients, per, keep)
                res[(name, pat)].append(cpu)
                print(f"| {r + 1} | {name} | {pat} | {cpu:.1f} | {lease:.1f} |", flush=True)
    print("\n| server | pattern | CPU ms/req, median of rounds |\n|---|---|---|")
    for (name, pat), v in res.items():
        print(f"| {name} | {pat} | {statistics.median(v):.1f} |")
finally:
    for p, _ in servers.values():
        p.terminate()
        p.wait(timeout=60)
