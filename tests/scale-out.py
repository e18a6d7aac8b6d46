#!/usr/bin/python3
"""Three `modelpool serve` backends behind the real HAProxy (deploy/haproxy.cfg, ports moved to free ones),
30 concurrent clients for DURATION seconds, and meanwhile:
  1. a rolling restart of all three backends with SIGTERM (graceful): 0 client errors. The first one has
     an upload sent to it directly, half sent at the SIGTERM and finished only once HAProxy has taken the
     server out: HAProxy must see its /ready fail (check status L7STS) while it is alive and still serving,
     and that upload must get the right transcript;
  2. SIGKILL of one backend and a restart (crash): 0 failures among requests that started after the kill;
     requests in flight at the kill may fail, at most as many as HAProxy had open on the killed server just
     before (its `scur`), and the test reports how many did (HAProxy replays them elsewhere: a transcription
     has no side effect); the restarted backend must be back in rotation (UP in HAProxy's stats) within 5 s
     of its restart.
Every 200 must carry the expected transcript. Loopback only; every loop is bounded in time.
usage: scale-out.py MODELPOOL_BIN SOURCE_DIR WORK_DIR [DURATION_S]"""
import collections
import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

BIN, SRC, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
DURATION = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
CLIENTS = 30
AUDIO = os.path.join(SRC, "samples", "phone-gsm.wav")
EXPECTED = open(os.path.join(SRC, "samples", "phone-gsm.txt")).read().strip()
DRAIN_S = 240


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    for name in sorted(os.listdir(WORK)):
        if name.endswith(".log"):
            with open(os.path.join(WORK, name), errors="replace") as f:
                tail = f.read()[-1500:]
            print(f"--- {name} (tail)\n{tail}", file=sys.stderr)
    raise SystemExit(1)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def multipart(fields, file_path):
    boundary = "modelpool-scale-out-boundary"
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{os.path.basename(file_path)}"\r\n'
              'Content-Type: audio/wav\r\n\r\n'.encode())
    out.write(open(file_path, "rb").read())
    out.write(f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def post(port, body, ctype, timeout=600):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/audio/transcriptions", data=body,
                                 headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace").strip()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace").strip()
    except Exception as e:  # connection refused/reset, timeout: a client-visible failure
        return 0, f"{type(e).__name__}: {e}"


def slow_post(port, body, ctype, release, timeout=60):
    """A POST whose body stops half way until `release` is set: an upload the server admitted before its
    SIGTERM and must finish after it (the drain waits for admitted uploads)."""
    head = (f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(head + body[:len(body) // 2])
            release.wait(timeout)
            s.sendall(body[len(body) // 2:])
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        status = int(data.split(b" ", 2)[1])
        return status, data.split(b"\r\n\r\n", 1)[1].decode(errors="replace").strip()
    except Exception as e:
        return 0, f"{type(e).__name__}: {e}"


class Cluster:
    def __init__(self):
        fe, b1, b2, b3, a0, a1, a2, a3, st = free_ports(9)
        self.fe, self.stats = fe, st
        self.backends = {"mp1": b1, "mp2": b2, "mp3": b3}
        self.audiosockets = {"mp1": a1, "mp2": a2, "mp3": a3}
        self.audiosocket_fe = a0
        # live calls (WebSocket /v1/stream, AudioSocket) when this server has them
        self.live = "--audiosocket" in subprocess.run([BIN, "serve", "--help"], capture_output=True,
                                                      text=True).stdout
        self.procs = {}
        self.logs = {}
        # deploy/haproxy.cfg with its ports moved (other tests and services may hold 8080..), its socket in
        # WORK and its log on stderr; nothing else changes.
        cfg = open(os.path.join(SRC, "deploy", "haproxy.cfg")).read()
        moves = {8080: fe, 8081: b1, 8082: b2, 8083: b3, 8090: a0, 8091: a1, 8092: a2, 8093: a3, 8404: st}
        for old, new in moves.items():
            cfg, n = re.subn(rf"\b{old}\b", str(new), cfg)
            if n == 0:
                fail(f"deploy/haproxy.cfg no longer mentions port {old}")
        cfg = cfg.replace("/run/haproxy/modelpool.sock", os.path.join(WORK, "haproxy.sock"))
        cfg = cfg.replace("log /dev/log local0", "log stderr format raw local0")
        if os.getuid() != 0:  # user/group/chroot need root; they change nothing that is tested here
            cfg = re.sub(r"(?m)^\s*(user|group|chroot) .*$", "", cfg)
        with open(os.path.join(WORK, "haproxy.cfg"), "w") as f:
            f.write(cfg)

    def start_backend(self, name):
        log = open(os.path.join(WORK, f"{name}.log"), "a")
        # the embedded model (no --model); one worker each: three processes share the machine's cores.
        # --timeout-ms 600000: on a machine shared with other jobs a request may wait long for the worker;
        # this test is about restarts and crashes, not capacity, so overload must not turn into 504s.
        p = subprocess.Popen([BIN, "serve", "--port", str(self.backends[name]), "--workers", "1",
                              "--drain-s", str(DRAIN_S), "--timeout-ms", "600000"] +
                             (["--audiosocket", f"127.0.0.1:{self.audiosockets[name]}", "--calls-log",
                               os.path.join(WORK, f"{name}.calls")] if self.live else []), stdout=log, stderr=log)
        self.procs[name] = p
        self.logs[name] = log.name
        t0 = time.time()
        while time.time() - t0 < 20:
            if p.poll() is not None:
                fail(f"{name} exited at start (status {p.returncode})")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.backends[name]}/health", timeout=1):
                    return t0
            except Exception:
                time.sleep(0.05)
        fail(f"{name} did not start in 20 s")

    def start_haproxy(self):
        log = open(os.path.join(WORK, "haproxy.log"), "w")
        out = subprocess.run(["haproxy", "-c", "-f", os.path.join(WORK, "haproxy.cfg")], capture_output=True,
                             text=True)
        if out.returncode != 0 or "WARNING" in out.stdout + out.stderr:
            fail(f"haproxy -c: {out.stdout}{out.stderr}")
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", os.path.join(WORK, "haproxy.cfg")], stdout=log,
                                        stderr=log)

    def stat(self):
        """HAProxy's `show stat` for backend modelpool: {svname: row} (rows are dicts of the CSV fields)."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(2)
        s.connect(os.path.join(WORK, "haproxy.sock"))
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        text = data.decode().lstrip("# ")
        return {r["svname"]: r for r in csv.DictReader(io.StringIO(text)) if r["pxname"] == "modelpool"}

    def wait_status(self, name, want, limit_s):
        t0 = time.time()
        while time.time() - t0 < limit_s:
            try:
                row = self.stat()[name]
                if row["status"].startswith(want):
                    return time.time(), row
            except (OSError, KeyError):
                pass
            time.sleep(0.05)
        return None, None

    def stop_all(self):
        for p in list(self.procs.values()) + [getattr(self, "haproxy", None)]:
            if p and p.poll() is None:
                p.kill()
                p.wait()


class Load:
    """CLIENTS threads posting the sample through HAProxy until stopped; every request is recorded."""

    def __init__(self, port):
        self.port = port
        self.body, self.ctype = multipart({"response_format": "text", "beam": "16"}, AUDIO)
        self.results = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client) for _ in range(CLIENTS)]

    def client(self):
        while not self.stop.is_set():
            t0 = time.time()
            status, text = post(self.port, self.body, self.ctype)
            with self.lock:
                self.results.append((t0, time.time(), status, text))

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(620)


def graceful_restart(c, name, on_down=None):
    """SIGTERM name, wait for it to drain and exit, start it again and wait until HAProxy has it UP."""
    p = c.procs[name]
    t_term = time.time()
    p.send_signal(signal.SIGTERM)
    t_down, row = c.wait_status(name, "DOWN", DRAIN_S)
    alive_when_down = p.poll() is None
    check = row["check_status"] if row else "?"
    if on_down:
        on_down.set()
    try:
        rc = p.wait(DRAIN_S + 5)
    except subprocess.TimeoutExpired:
        fail(f"{name} still running {DRAIN_S + 5} s after SIGTERM")
    t_exit = time.time()
    if rc != 0:
        fail(f"{name} exited with status {rc} after SIGTERM")
    t_start = c.start_backend(name)
    t_up, _ = c.wait_status(name, "UP", 10)
    if t_up is None:
        fail(f"{name} not UP in HAProxy 10 s after its restart")
    print(f"  {name}: SIGTERM -> marked down {t_down - t_term if t_down else -1:.2f} s (check {check}, "
          f"process {'alive' if alive_when_down else 'gone'}), exit {t_exit - t_term:.2f} s, "
          f"restart -> UP {t_up - t_start:.2f} s")
    return {"check": check, "alive_when_down": alive_when_down, "up_s": t_up - t_start}


def live_calls(c):
    """One vosk-protocol WebSocket call through HAProxy's HTTP frontend (/v1/stream, upgraded and tunnelled)
    and one AudioSocket call through its TCP section: the same final text as the call made to a server
    directly."""
    import asyncio
    import importlib.util

    def load(name):
        spec = importlib.util.spec_from_file_location(name, os.path.join(SRC, "tests", "live", name + ".py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    vc, asc = load("vosk_client"), load("audiosocket_client")
    rate, pcm = vc.read_wav(AUDIO)
    texts = {}
    for via, port in (("direct", c.backends["mp1"]), ("haproxy", c.fe)):
        out = asyncio.run(vc.stream(f"ws://127.0.0.1:{port}/v1/stream", rate, pcm))
        texts[via] = " ".join(r["text"] for _, _, r in out["replies"] if r.get("text")) + " " + out["final"].get("text", "")
        texts[via] = " ".join(texts[via].split())
    if not texts["direct"] or texts["haproxy"] != texts["direct"]:
        fail(f"WebSocket call through HAProxy: {texts['haproxy']!r}, directly: {texts['direct']!r}")
    calls = {}
    for via, port in (("direct", c.audiosockets["mp1"]), ("haproxy", c.audiosocket_fe)):
        u, got, _ = asc.call(f"127.0.0.1:{port}", rate, pcm, realtime=False)
        calls[via] = u
        if got:
            fail(f"AudioSocket call via {via}: the server sent {got!r}")
    time.sleep(0.5)
    lines = []
    for name in c.backends:
        path = os.path.join(WORK, f"{name}.calls")
        if os.path.exists(path):
            lines += [json.loads(ln) for ln in open(path) if ln.strip()]
    said = {via: " ".join(ln["text"] for ln in lines if ln.get("uuid") == u and "text" in ln)
            for via, u in calls.items()}
    if not said["direct"] or said["haproxy"] != said["direct"]:
        fail(f"AudioSocket call through HAProxy: {said['haproxy']!r}, directly: {said['direct']!r}")
    print(f"  live calls through HAProxy: WebSocket {texts['haproxy']!r}, AudioSocket {said['haproxy']!r}")


def main():
    c = Cluster()
    try:
        run(c)
    finally:
        c.stop_all()


def run(c):
    for name in c.backends:
        c.start_backend(name)
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{c.backends['mp1']}/ready", timeout=5).close()
    except urllib.error.HTTPError as e:
        if e.code == 404:
            print("skipped: this modelpool serve has no /ready endpoint")
            raise SystemExit(77)
    c.start_haproxy()
    for name in c.backends:
        if c.wait_status(name, "UP", 10)[0] is None:
            fail(f"{name} never UP in HAProxy")
    # SSE through HAProxy (http-buffer-request must not hold the event stream back)
    sse_body, sse_ctype = multipart({"stream": "true", "beam": "16"}, AUDIO)
    status, text = post(c.fe, sse_body, sse_ctype)
    done = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
    if status != 200 or not done or done[-1] != {"type": "transcript.text.done", "text": EXPECTED}:
        fail(f"stream=true through HAProxy: {status} {text!r}")
    if c.live:
        live_calls(c)
    else:
        print("  live calls: this server has no --audiosocket; WebSocket and AudioSocket sections not exercised")
    # an upload four times HAProxy's buffer (tune.bufsize): not replayable, but it must pass through whole
    big = os.path.join(WORK, "big.wav")
    subprocess.run(["sox", AUDIO, big, "repeat", "15"], check=True)
    if os.path.getsize(big) < 4 * 262144:
        fail(f"{big} is only {os.path.getsize(big)} bytes")
    big_want = subprocess.run([BIN, "transcribe", big], capture_output=True, text=True, check=True).stdout.strip()
    status, text = post(c.fe, *multipart({"response_format": "text"}, big))
    if (status, text) != (200, big_want):
        fail(f"a {os.path.getsize(big)}-byte upload through HAProxy: {status} {text!r} (want {big_want!r})")
    # an upload to mp1 (directly) that is half sent when mp1 gets SIGTERM and completes only once HAProxy has
    # taken mp1 out: HAProxy must see mp1's /ready fail while mp1 is alive, and mp1 must still answer it
    slow_body, slow_ctype = multipart({"response_format": "text", "beam": "16"}, AUDIO)
    load = Load(c.fe)
    t_begin = time.time()
    load.start()
    time.sleep(2)
    events = {}
    # 1. rolling restart, graceful. mp1 first, with the long request sent to it directly.
    long_res, release = {}, threading.Event()
    lt = threading.Thread(target=lambda: long_res.update(r=slow_post(c.backends["mp1"], slow_body, slow_ctype,
                                                                      release)))
    lt.start()
    time.sleep(0.5)
    events["mp1"] = graceful_restart(c, "mp1", release)
    lt.join(90)
    for name in ("mp2", "mp3"):
        events[name] = graceful_restart(c, name)
    t_rolled = time.time()
    # 2. crash: SIGKILL mp2, restart it a second later
    time.sleep(1)
    open_conns = int(c.stat()["mp2"]["scur"])  # requests HAProxy has on mp2 (running or queued there)
    t_kill = time.time()
    c.procs["mp2"].kill()
    c.procs["mp2"].wait()
    time.sleep(1)
    t_restart = c.start_backend("mp2")
    t_up, _ = c.wait_status("mp2", "UP", 10)
    if t_up is None:
        fail("mp2 not back UP in HAProxy 10 s after its restart")
    print(f"  mp2: SIGKILL, restart 1 s later -> UP {t_up - t_restart:.2f} s after the restart")
    rest = DURATION - (time.time() - t_begin)
    if rest > 0:
        time.sleep(rest)
    load.finish()
    t_end = time.time()
    st = c.stat()
    report(load, events, long_res.get("r"), t_begin, t_rolled, t_kill, open_conns, t_up - t_restart, t_end, st)


def report(load, events, long_r, t_begin, t_rolled, t_kill, open_conns, up_s, t_end, st):
    res = load.results
    ok = [r for r in res if r[2] == 200]
    wrong = [r for r in ok if r[3] != EXPECTED]
    failed = [r for r in res if r[2] != 200]
    in_flight = [r for r in failed if r[0] <= t_kill <= r[1]]
    lat = sorted(r[1] - r[0] for r in ok)
    be = st.get("BACKEND", {})
    print(f"  {len(res)} requests in {t_end - t_begin:.1f} s ({len(res) / (t_end - t_begin):.1f}/s), "
          f"{len(ok)} x 200, {len(failed)} failed ({len(in_flight)} in flight at the SIGKILL), "
          f"latency p50 {lat[len(lat) // 2]:.3f} s p95 {lat[int(len(lat) * 0.95)]:.3f} s, "
          f"HAProxy retries {be.get('wretr')} redispatches {be.get('wredis')}")
    print("  figures: " + json.dumps({"requests": len(res), "failed": len(failed), "failed_in_flight_at_kill":
                                       len(in_flight), "open_on_killed": open_conns, "restart_to_up_s": round(up_s, 2),
                                       "retries": be.get("wretr"), "redispatches": be.get("wredis")}))
    if failed:
        kinds = collections.Counter(f"{r[2]} {r[3][:100]}" for r in failed)
        print("  failures: " + "; ".join(f"{n} x {k}" for k, n in kinds.most_common()))
    if wrong:
        fail(f"{len(wrong)} answers with a wrong transcript, e.g. {wrong[0][3]!r} (want {EXPECTED!r})")
    graceful = [r for r in failed if r[0] < t_rolled]
    if graceful:
        fail(f"{len(graceful)} client errors during the rolling restart, e.g. status {graceful[0][2]}: {graceful[0][3]}")
    late = [r for r in failed if r[0] > t_kill]
    if late:
        fail(f"{len(late)} failures among requests started after the SIGKILL, e.g. {late[0][2]}: {late[0][3]}")
    if len(failed) != len(in_flight):
        fail(f"{len(failed) - len(in_flight)} failures outside the restarts: {failed[0][2]}: {failed[0][3]}")
    if len(in_flight) > open_conns:
        fail(f"{len(in_flight)} in-flight failures at the SIGKILL, over the {open_conns} requests open on it")
    if up_s > 5:
        fail(f"the killed backend was back in rotation {up_s:.2f} s after its restart (limit 5 s)")
    if not long_r or long_r[0] != 200 or long_r[1] != EXPECTED:
        fail(f"the upload admitted before SIGTERM: {long_r!r} (want 200 {EXPECTED!r})")
    e = events["mp1"]
    if not (e["alive_when_down"] and e["check"].startswith("L7")):
        fail(f"mp1 was not taken out by its readiness check while draining (check {e['check']}, "
             f"alive {e['alive_when_down']})")
    if len(ok) < CLIENTS:
        fail(f"only {len(ok)} successful requests in {t_end - t_begin:.0f} s")
    print(f"scale-out ok: rolling restart 0 errors, SIGKILL {len(in_flight)} in-flight failures "
          f"(bound: {open_conns} open on it), back UP {up_s:.2f} s after restart")


if __name__ == "__main__":
    main()
