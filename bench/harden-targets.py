#!/usr/bin/python3
"""harden-targets.py MODELPOOL_BIN [--budget-mb N] [--uploads N] [--slow N] [--clients N] [--requests N]
Measures the server hardening targets on loopback (tiny random-weight model; standard library only):
  slowloris  N connections from 127.0.0.1 sending header bytes at 1 byte/s (reopened when closed), then
             normal requests from 127.0.0.2: their latency, with --max-conn-per-ip 64 and with the defaults
  memory     N concurrent uploads of a 30-minute silent FLAC: peak RSS against --max-inflight-mb, statuses
  load       C clients x R requests: wrong transcripts, statuses
Prints one line per figure. CPU-heavy (memory, load): run it in a quiet window.
Measured 2026-12-01 (2-core AVX-512 Xeon, tiny model, release build, defaults unless named):
  slowloris  300 connections: slowest of 5 probes 0.02 s (defaults), 0.00 s (--max-conn-per-ip 64);
             the server before hardening did not answer within 30 s
  memory     40 uploads, --max-inflight-mb 2048: peak RSS 2022 MB, 18 x 200, 22 x 503 (all with Retry-After);
             --max-inflight-mb 256: 235 MB, 2 x 200, 38 x 503 (before hardening: 12 uploads -> 1312 MB)
  load       30 x 10: 300 x 200, 0 wrong transcripts"""
import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from harden_http import Server, connect, post_form, request  # noqa: E402

WAV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ref", "inputs", "in1.wav")


def slowloris(binary, n, extra):
    srv = Server(binary, ["--workers", "2"] + extra)
    stop, socks, lock = threading.Event(), [], threading.Lock()

    def slow():
        # one byte a second; a connection the server closes is opened again at once
        first = True
        while not stop.is_set():
            try:
                s = connect(srv.port, timeout=5)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            except OSError:
                stop.wait(0.1)
                continue
            if first:
                with lock:
                    socks.append(s)
                first = False
            while not stop.is_set():
                try:
                    s.sendall(b"a")
                except OSError:
                    break
                stop.wait(1.0)
            s.close()

    ts = [threading.Thread(target=slow, daemon=True) for _ in range(n)]
    for t in ts:
        t.start()
    time.sleep(3.0)
    worst, status = 0.0, []
    for _ in range(5):  # five probes a second apart, the attack going on
        t0 = time.time()
        r = request(srv.port, "GET", "/health", src="127.0.0.2", timeout=30)
        worst = max(worst, time.time() - t0)
        status.append(r.status if r else None)
        time.sleep(1.0)
    stop.set()
    srv.cleanup()
    return worst, status, len(socks)


def memory(binary, budget_mb, n):
    path = os.path.join(tempfile.mkdtemp(), "s.flac")
    subprocess.run(["sox", "-D", "-n", "-r", "8000", "-c", "1", "-b", "16", path, "trim", "0", "1790"], check=True)
    flac = open(path, "rb").read()
    srv = Server(binary, ["--workers", "2", "--queue", "16", "--max-inflight-mb", str(budget_mb)])
    out = [None] * n

    def one(i):
        out[i] = post_form(srv.port, [("file", "s.flac", flac), ("response_format", None, "text")], timeout=3600)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.time() - t0
    peak = srv.peak_rss_mb()
    srv.cleanup()
    codes = {}
    retry = all(r.header("Retry-After") for r in out if r and r.status == 503)
    for r in out:
        k = r.status if r else None
        codes[k] = codes.get(k, 0) + 1
    return peak, codes, retry, wall, len(flac)


def load(binary, clients, reqs):
    want = subprocess.run([binary, "transcribe", "--arch", "tiny", WAV], capture_output=True, text=True,
                          check=True).stdout.strip()
    audio = open(WAV, "rb").read()
    srv = Server(binary, ["--workers", "2", "--queue", "64"])
    codes, wrong, lock = {}, [0], threading.Lock()

    def client():
        for _ in range(reqs):
            r = post_form(srv.port, [("file", "a.wav", audio), ("response_format", None, "text")], timeout=600)
            with lock:
                k = r.status if r else None
                codes[k] = codes.get(k, 0) + 1
                if r and r.status == 200 and r.body.decode().strip() != want:
                    wrong[0] += 1

    ts = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.time() - t0
    srv.cleanup()
    return codes, wrong[0], wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--slow", type=int, default=300)
    ap.add_argument("--budget-mb", type=int, default=2048)
    ap.add_argument("--uploads", type=int, default=40)
    ap.add_argument("--clients", type=int, default=30)
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--only", choices=["slowloris", "memory", "load"])
    a = ap.parse_args()
    if a.only in (None, "slowloris"):
        for label, extra in (("--max-conn-per-ip 64", ["--max-conn-per-ip", "64"]), ("defaults", [])):
            dt, st, n = slowloris(a.bin, a.slow, extra)
            print(f"slowloris ({label}): {n} slow-header connections kept open from 127.0.0.1; "
                  f"GET /health from 127.0.0.2 x5 -> {st}, slowest {dt:.2f} s", flush=True)
    if a.only in (None, "memory"):
        peak, codes, retry, wall, size = memory(a.bin, a.budget_mb, a.uploads)
        print(f"memory: {a.uploads} concurrent uploads of a {size} B FLAC holding 1790 s of silence, "
              f"--max-inflight-mb {a.budget_mb}: peak RSS {peak:.0f} MB (target <= {a.budget_mb + 300}); "
              f"statuses {codes}; every 503 has Retry-After: {retry}; {wall:.0f} s", flush=True)
    if a.only in (None, "load"):
        codes, wrong, wall = load(a.bin, a.clients, a.requests)
        print(f"load: {a.clients} clients x {a.requests} requests: statuses {codes}, wrong transcripts {wrong}, "
              f"{wall:.1f} s", flush=True)


if __name__ == "__main__":
    main()
