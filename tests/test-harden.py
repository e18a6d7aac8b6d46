#!/usr/bin/python3
"""test-harden.py MODELPOOL_BIN CASE - regression tests for `modelpool serve` hardening (issue items 1-8 and
the features that came with them). Each case starts its own server (random-weight tiny model) and talks raw
HTTP/1.1 over sockets, so it can send what well-behaved clients never do. Standard library only.

Cases: noname slowloris budget slow_upload truncated duplicate cancel keepalive http auth stats accesslog"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harden_http import Server, build, connect, multipart, parse, post_form, read_all, request  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WAV = os.path.join(HERE, "data", "ref", "inputs", "in1.wav")  # 2.37 s
BIN = sys.argv[1] if len(sys.argv) > 1 else "build/modelpool"
TMP = tempfile.mkdtemp(prefix="mp-harden-")
servers = []


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    for s in servers:
        print("--- server log\n" + s.text()[-3000:], file=sys.stderr)
    raise SystemExit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def serve(*args, **kw):
    try:
        s = Server(BIN, list(args), **kw)
    except RuntimeError as e:
        fail(str(e))
    servers.append(s)
    return s


def wav_bytes(path=WAV):
    with open(path, "rb") as f:
        return f.read()


def silent_flac(seconds, rate=8000):
    """A few KB of FLAC holding `seconds` of digital silence (the issue's memory attack)."""
    path = os.path.join(TMP, f"sil{seconds}.flac")
    if not os.path.exists(path):
        subprocess.run(["sox", "-D", "-n", "-r", str(rate), "-c", "1", "-b", "16", path, "trim", "0", str(seconds)],
                       check=True)
    with open(path, "rb") as f:
        return f.read()


def expected_text():
    return subprocess.run([BIN, "transcribe", "--arch", "tiny", WAV], capture_output=True, text=True,
                          check=True).stdout.strip()


def metric(srv, name):
    r = request(srv.port, "GET", "/metrics", host=srv.host)
    check(r and r.status == 200, f"/metrics: {r}")
    m = re.search(r"^" + re.escape(name) + r" ([0-9.e+-]+)$", r.body.decode(), re.M)
    return float(m.group(1)) if m else None


def good_request(srv, **kw):
    r = post_form(srv.port, [("file", "a.wav", wav_bytes()), ("response_format", None, "text")], host=srv.host, **kw)
    check(r is not None and r.status == 200, f"a valid request is not answered with 200: {r}")
    return r.body.decode().strip()


# ---- 1. a part with no name -------------------------------------------------------------------------------

def case_noname():
    srv = serve("--workers", "2", "--queue", "16")
    h = [("Content-Type", "multipart/form-data; boundary=XXB")]
    for body in (b"--XXB\r\n\r\nx\r\n--XXB--\r\n",
                 b'--XXB\r\nContent-Disposition: form-data; filename="a.wav"\r\n\r\nx\r\n--XXB--\r\n',
                 multipart([(None, "a.wav", wav_bytes()), ("file", "b.wav", wav_bytes())])):
        r = request(srv.port, "POST", "/v1/audio/transcriptions", h, body)
        check(srv.alive(), f"server died on a part with no name (exit {srv.proc.poll()})")
        check(r is not None and r.status == 400, f"part with no name -> {r}")
        check(b"invalid_request_error" in r.body, f"no OpenAI-style error body: {r}")
    check(good_request(srv) == expected_text(), "transcript after the bad requests")


# ---- 2. slowloris ------------------------------------------------------------------------------------------

def slow_client(port, stop, sockets, lock):
    try:
        s = connect(port, timeout=5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    except OSError:
        return
    with lock:
        sockets.append(s)
    while not stop.is_set():
        try:
            s.sendall(b"a")  # one byte a second: each resets an inactivity timer
        except OSError:
            return
        stop.wait(1.0)


def case_slowloris():
    # header total timeout 3 s; per-address cap 20 (off by default: a load balancer is one address)
    srv = serve("--max-connections", "64", "--max-conn-per-ip", "20", "--header-timeout-s", "3")
    stop, lock, socks = threading.Event(), threading.Lock(), []
    threads = [threading.Thread(target=slow_client, args=(srv.port, stop, socks, lock), daemon=True)
               for _ in range(100)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    try:
        t0 = time.time()
        r = request(srv.port, "GET", "/health", src="127.0.0.2", timeout=5)
        dt = time.time() - t0
        check(r is not None and r.status == 200, f"/health from 127.0.0.2 during the attack: {r}")
        check(dt < 2.0, f"/health from 127.0.0.2 took {dt:.2f} s during the attack")
        # the slow connections are closed after the total header time although bytes keep coming
        time.sleep(4.0)
        closed = 0
        with lock:
            for s in socks:
                try:
                    s.settimeout(0.2)
                    d = s.recv(4096)
                    closed += (d == b"" or d.startswith(b"HTTP/1.1 408"))
                except socket.timeout:
                    pass
                except OSError:
                    closed += 1
            n = len(socks)
        check(n >= 20 and closed >= 0.9 * n, f"{closed} of {n} slow-header connections closed after 7 s")
    finally:
        stop.set()
    check(good_request(srv) == expected_text(), "transcript after the attack")


# ---- 3. memory charged before it is allocated --------------------------------------------------------------

def case_budget():
    flac = silent_flac(1790)
    budget_mb = 256
    srv = serve("--workers", "2", "--queue", "16", "--max-inflight-mb", str(budget_mb), "--max-audio-s", "1800")
    base = srv.peak_rss_mb()
    results = [None] * 12

    def one(i):
        results[i] = post_form(srv.port, [("file", "s.flac", flac), ("response_format", None, "text")], timeout=300)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(srv.alive(), "server died")
    codes = [r.status if r else None for r in results]
    peak = srv.peak_rss_mb()
    print(f"budget: {codes.count(200)} served, {codes.count(503)} x 503; peak RSS {peak:.0f} MB "
          f"(at start {base:.0f} MB, --max-inflight-mb {budget_mb})")
    check(peak <= budget_mb + 300, f"peak RSS {peak:.0f} MB > --max-inflight-mb {budget_mb} + 300 MB")
    check(all(c in (200, 503) for c in codes), f"statuses {codes}")
    check(codes.count(200) >= 1, f"no upload was served: {codes}")
    for r in results:
        if r.status == 503:
            check(r.header("Retry-After"), f"503 without Retry-After: {r}")
    texts = {r.body for r in results if r.status == 200}
    check(len(texts) == 1, "the served uploads differ")
    # a header declaring more than --max-audio-s is refused before decoding: 413
    srv2 = serve("--max-audio-s", "600")
    r = post_form(srv2.port, [("file", "s.flac", flac)])
    check(r and r.status == 413 and b"audio_too_long" in r.body, f"1790 s FLAC over --max-audio-s 600: {r}")


# ---- 4. slow uploads, and the declared length ---------------------------------------------------------------

def case_slow_upload():
    srv = serve("--max-inflight-mb", "10", "--max-body-mb", "8")
    # a declared length over --max-body-mb: 413 at once, no 100 Continue
    s = connect(srv.port, timeout=5)
    s.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n"
              b"Expect: 100-continue\r\nContent-Type: multipart/form-data; boundary=XXB\r\n\r\n")
    first = b""
    try:
        first = s.recv(4096)
    except socket.timeout:
        pass
    s.close()
    check(first.startswith(b"HTTP/1.1 413"), f"Content-Length 1e9 with Expect: 100-continue -> {first[:80]!r}")
    # three uploads stalled after 2.2 MB each hold what they hold (6.6 MB of 10), not doubled capacity
    stalled = []
    head = (b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n"
            b"Content-Type: multipart/form-data; boundary=XXB\r\n\r\n"
            b'--XXB\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n')
    for _ in range(3):
        c = connect(srv.port, timeout=10)
        c.sendall(head + b"\0" * 2200000)
        stalled.append(c)
    time.sleep(1.0)
    held = metric(srv, "modelpool_inflight_bytes")
    check(held is not None and held <= 3 * 2.6e6, f"3 stalled uploads of 2.2 MB hold {held} bytes of the budget")
    r = post_form(srv.port, [("file", "a.wav", wav_bytes())])
    check(r and r.status == 200, f"a small request while slow uploads wait: {r}")
    for c in stalled:
        c.close()


# ---- 5. truncated uploads ------------------------------------------------------------------------------------

def case_truncated():
    srv = serve()
    full = multipart([("file", "a.wav", wav_bytes()), ("response_format", None, "text")])
    h = [("Content-Type", "multipart/form-data; boundary=XXB")]
    cut = full[:len(full) // 2]  # mid-file, Content-Length says this is all
    r = request(srv.port, "POST", "/v1/audio/transcriptions", h, cut)
    check(r and r.status == 400, f"multipart cut mid-file -> {r}")
    nofinal = multipart([("file", "a.wav", wav_bytes())], close=False)  # no closing boundary
    r = request(srv.port, "POST", "/v1/audio/transcriptions", h, nofinal)
    check(r and r.status == 400, f"multipart without its closing boundary -> {r}")
    # the Content-Length shorter than the body: the body is cut at the declared length
    raw = build("POST", "/v1/audio/transcriptions", h, full, content_length=False)
    raw = raw.replace(b"\r\n\r\n", f"\r\nContent-Length: {len(full) - 200}\r\n\r\n".encode(), 1)
    r = request(srv.port, "", "", raw=raw)
    check(r and r.status == 400, f"Content-Length 200 bytes short of the body -> {r}")
    check(good_request(srv) == expected_text(), "complete request")


# ---- 6. duplicate file parts -----------------------------------------------------------------------------------

def case_duplicate():
    srv = serve()
    raw = b"\0" * 16000
    r = post_form(srv.port, [("file", "a.raw", raw), ("file", "b.raw", raw), ("raw_format", None, "s16le"),
                             ("response_format", None, "verbose_json")])
    check(r and r.status == 400 and b"duplicate" in r.body, f"two file parts -> {r}")
    r = post_form(srv.port, [("file", "a.raw", raw), ("raw_format", None, "s16le"),
                             ("response_format", None, "verbose_json")])
    check(r and r.status == 200 and abs(r.json()["duration"] - 1.0) < 1e-6, f"one 1 s part -> {r}")


# ---- 7. abandoned requests ----------------------------------------------------------------------------------------

def chunks_done(srv):
    r = request(srv.port, "GET", "/metrics")
    m = re.search(r'^modelpool_requests_total\{outcome="completed"\} (\d+)$', r.body.decode(), re.M)
    return int(m.group(1))


def abandon(srv, parts):
    body = multipart(parts)
    s = connect(srv.port, timeout=10)
    s.sendall(build("POST", "/v1/audio/transcriptions", [("Content-Type", "multipart/form-data; boundary=XXB")],
                    body))
    base = chunks_done(srv)
    for _ in range(600):  # until its chunks run (decoding 30 minutes takes a while on a loaded machine)
        if chunks_done(srv) > base:
            break
        time.sleep(0.1)
    s.close()
    for _ in range(1200):  # until the request ended: stopped, or ran to its end
        if metric(srv, "modelpool_http_requests_active") == 0 and metric(srv, "modelpool_workers_busy") == 0:
            break
        time.sleep(0.1)
    c1 = chunks_done(srv)
    time.sleep(2.0)
    c2 = chunks_done(srv)
    return c1 - base, c2 - base


def case_cancel():
    flac = silent_flac(1790, rate=16000)
    srv = serve("--workers", "1", "--max-audio-s", "1800")
    c1, c2 = abandon(srv, [("file", "s.flac", flac)])
    # 1790 s are 90 chunks of 20 s: the request stopped long before its end, and nothing ran after
    check(c1 < 80 and c2 == c1, f"abandoned request: {c1} chunks, then {c2 - c1} more after it ended")
    c1, c2 = abandon(srv, [("file", "s.flac", flac), ("stream", None, "true")])
    check(c1 < 80 and c2 == c1, f"abandoned stream: {c1} chunks, then {c2 - c1} more")
    check(good_request(srv) == expected_text(), "transcript after the abandoned requests")


def case_keepalive():
    # An event stream sends a comment whenever nothing else went out for --sse-keepalive-s (default 10 s;
    # 0.05 s here, so the gaps between 20 s chunks of the tiny model are enough to see them).
    flac = silent_flac(300, rate=16000)
    srv = serve("--workers", "1", "--max-audio-s", "1800", "--sse-keepalive-s", "0.05")
    s = connect(srv.port, timeout=60)
    s.sendall(build("POST", "/v1/audio/transcriptions", [("Content-Type", "multipart/form-data; boundary=XXB")],
                    multipart([("file", "s.flac", flac), ("stream", None, "true")])))
    got, t0 = b"", time.time()
    while b"\n:" not in got and b"\r\n:" not in got and time.time() - t0 < 30:
        try:
            got += s.recv(4096)
        except socket.timeout:
            break
    s.close()
    check(b"200 OK" in got and re.search(rb"(^|\n): ?keep-alive", got, re.M), f"no SSE keep-alive: {got[:400]!r}")


# ---- 8. HTTP details ----------------------------------------------------------------------------------------------

def case_http():
    srv = serve("--max-audio-s", "3", "--max-inflight-mb", "1", "--max-body-mb", "4")
    r = request(srv.port, "GET", "/v1/audio/transcriptions")
    check(r.status == 405 and r.header("Allow") and "POST" in r.header("Allow"), f"GET transcriptions: {r}")
    r = request(srv.port, "DELETE", "/health")
    check(r.status == 405 and "GET" in (r.header("Allow") or ""), f"DELETE /health: {r}")
    for m in ("GET", "POST"):
        r = request(srv.port, m, "/nope")
        check(r.status == 404, f"{m} /nope: {r}")
    r = request(srv.port, "GET", "/health")
    check(r.status == 200, f"/health: {r}")
    r = request(srv.port, "GET", "/ready")
    check(r.status == 200 and b'"ready"' in r.body, f"/ready: {r}")
    # over the memory budget: 503 with Retry-After
    r = post_form(srv.port, [("file", "big.raw", b"\0" * 1500000), ("raw_format", None, "s16le")])
    check(r.status == 503 and r.header("Retry-After"), f"over the budget: {r}")
    # audio longer than --max-audio-s: 413 (the content is too large for this server, not a bad format)
    sox = os.path.join(TMP, "long.wav")
    subprocess.run(["sox", WAV, WAV, sox], check=True)
    r = post_form(srv.port, [("file", "long.wav", wav_bytes(sox))])
    check(r.status == 413 and b"audio_too_long" in r.body, f"4.7 s over --max-audio-s 3: {r}")
    # two different Content-Length headers
    raw = (b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\n"
           b"Content-Length: 12\r\nContent-Type: multipart/form-data; boundary=XXB\r\n\r\n0123456789ab")
    r = request(srv.port, "", "", raw=raw)
    check(r and r.status == 400, f"two Content-Length headers: {r}")
    # --host takes IPv6 and names
    for host, connect_to in (("::1", "::1"), ("localhost", "127.0.0.1")):
        try:
            socket.socket(socket.AF_INET6).close()
        except OSError:
            continue
        s6 = serve("--host", host)
        r = request(s6.port, "GET", "/health", host=connect_to)
        check(r and r.status == 200, f"--host {host}: {r}")


# ---- auth, CORS, stats, access log ---------------------------------------------------------------------------------

def case_auth():
    keys = os.path.join(TMP, "keys")
    with open(keys, "w") as f:
        f.write("# operators\nsk-first-key\n\nsk-second-key\n")
    srv = serve("--api-key-file", keys, "--cors-origin", "https://app.example")
    parts = [("file", "a.wav", wav_bytes()), ("response_format", None, "text")]
    for hdr in ([], [("Authorization", "Bearer wrong")], [("Authorization", "Bearer sk-first-ke")],
                [("Authorization", "Basic sk-first-key")]):
        r = post_form(srv.port, parts, headers=hdr)
        check(r.status == 401 and r.json()["error"]["code"] == "invalid_api_key", f"{hdr}: {r}")
        check(r.header("WWW-Authenticate"), f"401 without WWW-Authenticate: {r}")
    for key in ("sk-first-key", "sk-second-key"):
        r = post_form(srv.port, parts, headers=[("Authorization", "Bearer " + key)])
        check(r.status == 200 and r.body.decode().strip() == expected_text(), f"key {key}: {r}")
    for path in ("/health", "/ready", "/metrics"):
        check(request(srv.port, "GET", path).status == 200, f"{path} must stay open")
    for path in ("/v1/models", "/v1/stats"):
        check(request(srv.port, "GET", path).status == 401, f"{path} without a key")
    # CORS: preflight, and the allowed origin echoed; no other origin
    r = request(srv.port, "OPTIONS", "/v1/audio/transcriptions",
                [("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST"),
                 ("Access-Control-Request-Headers", "authorization, content-type")])
    check(r.status == 204 and r.header("Access-Control-Allow-Origin") == "https://app.example"
          and "POST" in r.header("Access-Control-Allow-Methods")
          and "authorization" in r.header("Access-Control-Allow-Headers").lower(), f"preflight: {r}")
    r = request(srv.port, "GET", "/health", [("Origin", "https://evil.example")])
    check(r.status == 200 and r.header("Access-Control-Allow-Origin") is None, f"other origin: {r}")
    r = request(srv.port, "GET", "/health", [("Origin", "https://app.example")])
    check(r.header("Access-Control-Allow-Origin") == "https://app.example", f"allowed origin: {r}")
    # /metrics keyed by an option
    srv2 = serve("--api-key-file", keys, "--metrics-auth")
    check(request(srv2.port, "GET", "/metrics").status == 401, "--metrics-auth: /metrics without a key")
    check(request(srv2.port, "GET", "/metrics", [("Authorization", "Bearer sk-second-key")]).status == 200,
          "--metrics-auth: /metrics with a key")
    # a missing or empty key file stops the server before it listens
    for bad in (os.path.join(TMP, "missing"), os.path.join(TMP, "empty")):
        open(os.path.join(TMP, "empty"), "w").close()
        p = subprocess.run([BIN, "serve", "--arch", "tiny", "--port", "0", "--api-key-file", bad],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode != 0 and os.path.basename(bad) in p.stderr, f"--api-key-file {bad}: {p.stderr}")


def case_stats():
    srv = serve("--workers", "2")
    for _ in range(3):
        good_request(srv)
    check(request(srv.port, "GET", "/nope").status == 404, "404")
    r = request(srv.port, "GET", "/v1/stats")
    check(r.status == 200, f"/v1/stats: {r}")
    st = r.json()
    for k in ("pool_size", "total_requests", "avg_wait_time", "available_models", "busy_models"):
        check(k in st, f"/v1/stats lacks {k}: {st}")
    check(st["pool_size"] == 2 and st["available_models"] == 2 and st["busy_models"] == 0, f"{st}")
    check(st["http_requests"]["200"] == 3 and st["http_requests"]["404"] == 1, f"http counters: {st}")
    m = request(srv.port, "GET", "/metrics").body.decode()
    # the three transcriptions and the /v1/stats answer
    check(re.search(r'^modelpool_http_requests_total\{code="200"\} 4$', m, re.M), "http_requests_total 200")
    check(re.search(r'^modelpool_http_requests_total\{code="404"\} 1$', m, re.M), "http_requests_total 404")
    # the pool's per-chunk counters are separate
    check(re.search(r'^modelpool_requests_total\{outcome="completed"\} 3$', m, re.M), "per-chunk counter")


def case_accesslog():
    log = os.path.join(TMP, "access.log")
    srv = serve("--access-log", log)
    good_request(srv)
    request(srv.port, "GET", "/nope")
    srv.stop()
    with open(log) as f:
        lines = f.read().splitlines()
    check(len(lines) == 2, f"access log: {lines}")
    f0 = lines[0].split()
    # time client method path status bytes audio_s latency_s
    check(len(f0) == 8 and f0[1] == "127.0.0.1" and f0[2] == "POST" and f0[3] == "/v1/audio/transcriptions"
          and f0[4] == "200" and int(f0[5]) > 0 and abs(float(f0[6]) - 2.37) < 0.01 and float(f0[7]) >= 0,
          f"line {lines[0]}")
    check(lines[1].split()[4] == "404", f"line {lines[1]}")


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if shutil.which("sox") is None:
        print("skipped: sox missing")
        sys.exit(77)
    try:
        CASES[sys.argv[2]]()
        for s in servers:
            rc = s.stop()
            check(rc == 0, f"server exit status {rc}")
    finally:
        for s in servers:
            s.cleanup()
        shutil.rmtree(TMP, ignore_errors=True)
    print(f"harden {sys.argv[2]} ok")
