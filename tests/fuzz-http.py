#!/usr/bin/python3
"""fuzz-http.py MODELPOOL_BIN [--seconds S] [--seed N] [--clients K] - a bounded randomized HTTP client against
`modelpool serve` (built with ASan+UBSan in CI). Each client thread takes a valid transcription request and
mutates it: multipart structure (boundaries, part headers, names, duplicates, truncation), HTTP headers and
lengths (duplicate or lying Content-Length, chunked encoding, Expect, bad methods and paths), form values and
the audio bytes, and closes early at random points. Meanwhile a probe sends a valid request every second,
which must be answered with the right transcript within 15 s. Fails (exit 1) on a sanitizer report in the
server's log, a crash or unclean exit, or a probe that goes unanswered, during or after the run.
Standard library only; the seed makes a run repeatable (up to thread timing)."""
import argparse
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harden_http import Server, connect, multipart, parse, read_all  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WAV = os.path.join(HERE, "data", "ref", "inputs", "in1.wav")

FIELDS = {
    "response_format": ["json", "text", "verbose_json", "srt", "vtt", "docx", "", "JSON", "text\0"],
    "model": ["tiny", "", "x" * 300, "whisper-1"],
    "beam": ["0", "4", "-1", "1025", "x", "", "99999999999999999999", "4.5"],
    "hotwords": ["AN:3", "A:x", ",,,", ":", "A:1e400", "A," * 100, ""],
    "words": ["A I AN", "A1", "", " ", "A\tI\nAN", "Ω"],
    "lexicon": ["model", "none", "maybe", ""],
    "lm": ["on", "off", "yes", ""],
    "lm_alpha": ["1", "1e9", "nan", "-inf", "x", ""],
    "lm_beta": ["3", "-100", "inf", ""],
    "channel": ["0", "1", "-1", "255", "256", "x"],
    "raw_format": ["s16le", "mulaw", "alaw", "mp4", ""],
    "raw_rate": ["8000", "12", "384001", "x", ""],
    "stream": ["true", "false", "maybe", ""],
    "language": ["en"], "prompt": ["hello"], "temperature": ["0"],
}
METHODS = ["POST", "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "BREW", "post", ""]
PATHS = ["/v1/audio/transcriptions", "/v1/audio/transcriptions?x=1", "/v1/audio/transcriptions/", "/health",
         "/ready", "/metrics", "/v1/models", "/v1/stats", "/", "/nope", "//v1/audio/transcriptions", "/%00",
         "/v1/audio/%2e%2e/transcriptions", "*", "http://x/v1/audio/transcriptions", "/" + "a" * 5000]


class Fuzzer:
    def __init__(self, port, seed, audio, deadline):
        self.port, self.audio, self.deadline = port, audio, deadline
        self.rng = random.Random(seed)
        self.stats = {}

    def mutate_bytes(self, b, n=None):
        b = bytearray(b)
        for _ in range(n or self.rng.randint(1, 8)):
            if not b:
                break
            op, i = self.rng.random(), self.rng.randrange(len(b))
            if op < 0.4:
                b[i] = self.rng.randrange(256)
            elif op < 0.6:
                del b[i:i + self.rng.randint(1, 16)]
            elif op < 0.8:
                b[i:i] = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 16)))
            else:
                j = self.rng.randrange(len(b))
                b[i:i] = b[j:j + self.rng.randint(1, 64)]
        return bytes(b)

    def audio_part(self):
        r = self.rng.random()
        a = self.audio
        if r < 0.5:
            return a
        if r < 0.65:
            return a[:self.rng.randrange(len(a))]
        if r < 0.8:
            return self.mutate_bytes(a[:64]) + a[64:]  # the header
        if r < 0.9:
            return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(0, 3000)))
        return b"#!AMR\n" + bytes(self.rng.choice([0x7C, 0x3C, 0x04, 0xFF]) for _ in range(self.rng.randint(0, 500)))

    def parts(self):
        ps = [("file", "a.wav", self.audio_part())]
        for _ in range(self.rng.randint(0, 4)):
            k = self.rng.choice(list(FIELDS))
            ps.append((k, None, self.rng.choice(FIELDS[k])))
        r = self.rng.random()
        if r < 0.08:
            ps.append(("file", "b.wav", self.audio))
        elif r < 0.16:
            ps.append((None, self.rng.choice([None, "a.wav"]), "x"))
        elif r < 0.19:
            ps.append(("", None, "x"))
        elif r < 0.22:
            ps.append(("n" * self.rng.randint(100, 5000), None, "x"))
        self.rng.shuffle(ps)
        return ps

    def body(self, boundary):
        b = multipart(self.parts(), boundary=boundary, close=self.rng.random() > 0.1)
        r = self.rng.random()
        if r < 0.1:
            b = b.replace(b"\r\n", b"\n")
        elif r < 0.2:
            b = b[:self.rng.randrange(len(b) + 1)]
        elif r < 0.35:
            # mutate the multipart structure, not the audio: the first and last 300 bytes
            b = self.mutate_bytes(b[:300]) + b[300:-300] + self.mutate_bytes(b[-300:]) if len(b) > 600 else \
                self.mutate_bytes(b)
        elif r < 0.4:
            b = b"preamble\r\n" + b + b"epilogue"
        elif r < 0.43:
            b = b.replace(b"Content-Disposition: form-data", b"Content-Disposition: form-data; name*=UTF-8''x", 1)
        return b

    def request(self):
        rng = self.rng
        boundary = rng.choice(["XXB", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "a", "x" * 70, "b\"q", "=?", ""])
        body = self.body(boundary) if rng.random() < 0.85 else self.mutate_bytes(b"x=1&y=2")
        method = "POST" if rng.random() < 0.8 else rng.choice(METHODS)
        path = "/v1/audio/transcriptions" if rng.random() < 0.8 else rng.choice(PATHS)
        version = "HTTP/1.1" if rng.random() < 0.9 else rng.choice(["HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", ""])
        ctype = rng.choice([f"multipart/form-data; boundary={boundary}", f'multipart/form-data; boundary="{boundary}"',
                            "multipart/form-data", "multipart/form-data; boundary=", "application/x-www-form-urlencoded",
                            "text/plain", "multipart/mixed; boundary=XXB", f"Multipart/Form-Data; BOUNDARY={boundary}"]
                           if rng.random() < 0.4 else [f"multipart/form-data; boundary={boundary}"])
        headers = [("Host", "x"), ("Content-Type", ctype)]
        n = len(body)
        mode = rng.random()
        if mode < 0.6:
            headers.append(("Content-Length", str(n)))
        elif mode < 0.67:
            headers.append(("Content-Length", str(max(0, n + rng.randint(-500, 500)))))
        elif mode < 0.72:
            headers += [("Content-Length", str(n)), ("Content-Length", str(n + rng.choice([0, 1])))]
        elif mode < 0.76:
            headers.append(("Content-Length", rng.choice(["-1", "x", "1e3", "99999999999999999999999", " 5", ""])))
        elif mode < 0.9:
            headers.append(("Transfer-Encoding", rng.choice(["chunked", "chunked", "gzip, chunked", "identity"])))
            body = self.chunked(body)
        elif mode < 0.93:
            headers += [("Transfer-Encoding", "chunked"), ("Content-Length", str(n))]
            body = self.chunked(body)
        if rng.random() < 0.1:
            headers.append(("Expect", rng.choice(["100-continue", "200-ok"])))
        if rng.random() < 0.05:
            headers.append(("Authorization", rng.choice(["Bearer x", "Bearer", "Basic eA==", "x" * 9000])))
        if rng.random() < 0.05:
            headers.append(("X-Long", "v" * rng.randint(1000, 20000)))
        if rng.random() < 0.03:
            headers.append(("Bad header", "x"))
        if rng.random() < 0.03:
            headers.append(("X-Fold", "a\r\n b"))
        if rng.random() < 0.03:
            headers.append(("Origin", "https://x"))
        rng.shuffle(headers)
        head = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        return head.encode("latin-1", "replace") + body

    def chunked(self, body):
        out, pos = b"", 0
        while pos < len(body):
            k = self.rng.randint(1, 70000)
            piece = body[pos:pos + k]
            size = len(piece) if self.rng.random() > 0.05 else len(piece) + self.rng.randint(-3, 3)
            out += b"%x\r\n" % max(size, 0) + piece + b"\r\n"
            pos += k
        if self.rng.random() > 0.05:
            out += b"0\r\n\r\n"
        return out

    def one(self):
        raw = self.request()
        try:
            s = connect(self.port, timeout=6)
        except OSError as e:
            self.note("connect:" + type(e).__name__)
            return
        try:
            cut = len(raw) if self.rng.random() > 0.1 else self.rng.randrange(len(raw) + 1)
            for i in range(0, cut, 65536):
                s.sendall(raw[i:min(i + 65536, cut)])
            if cut < len(raw):
                self.note("early-close")
                return
            if self.rng.random() < 0.05:
                s.shutdown(socket.SHUT_WR)
            if self.rng.random() < 0.05:
                s.recv(10)  # read a little of the answer, then close
                self.note("close-while-reading")
                return
            r = parse(read_all(s))
            self.note(str(r.status) if r else "no-response")
        except OSError as e:
            self.note("io:" + type(e).__name__)
        finally:
            s.close()

    def note(self, k):
        self.stats[k] = self.stats.get(k, 0) + 1

    def run(self, stop):
        while time.time() < self.deadline and not stop.is_set():
            self.one()


def probe(port, audio, want):
    body = multipart([("file", "a.wav", audio), ("response_format", None, "text")])
    head = (f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: multipart/form-data; boundary=XXB\r\n\r\n").encode()
    try:
        s = connect(port, timeout=15)
        s.sendall(head + body)
        r = parse(read_all(s))
        s.close()
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    if r is None:
        return "no response"
    if r.status in (503, 504):
        return None  # the queue policy, not a failure
    if r.status != 200 or r.body.decode().strip() != want:
        return f"{r.status} {r.body[:200]!r}"
    return None


SANITIZER = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|runtime error:|SUMMARY: \w+Sanitizer")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bin")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--serve-args", default="--workers 2 --queue 16 --max-body-mb 2 --max-audio-s 30 --timeout-ms 10000 "
                    "--header-timeout-s 3 --idle-timeout-s 2", help="options for `modelpool serve`")
    a = ap.parse_args()
    with open(WAV, "rb") as f:
        audio = f.read()
    want = subprocess.run([a.bin, "transcribe", "--arch", "tiny", WAV], capture_output=True, text=True,
                          check=True).stdout.strip()
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    srv = Server(a.bin, a.serve_args.split(), env=env)
    print(f"fuzz-http: seed {a.seed}, {a.clients} clients, {a.seconds:g} s, port {srv.port}", flush=True)
    deadline = time.time() + a.seconds
    fz = [Fuzzer(srv.port, a.seed * 1000 + i, audio, deadline) for i in range(a.clients)]
    stop = threading.Event()  # set when the server died: no point in going on
    ts = [threading.Thread(target=f.run, args=(stop,), daemon=True) for f in fz]
    for t in ts:
        t.start()
    failures, n_probes = [], 0
    while time.time() < deadline and srv.alive():
        err = probe(srv.port, audio, want)
        n_probes += 1
        if err:
            failures.append(f"probe at {a.seconds - (deadline - time.time()):.0f} s: {err}")
        time.sleep(1.0)
    stop.set()
    for t in ts:
        t.join(60)
    if srv.alive():
        err = probe(srv.port, audio, want)
        if err:
            failures.append(f"probe after the run: {err}")
    alive = srv.alive()
    rc = srv.stop(timeout=60)
    log = srv.text()
    total = {}
    for f in fz:
        for k, v in f.stats.items():
            total[k] = total.get(k, 0) + v
    print(f"fuzz-http: {sum(total.values())} requests, {n_probes} probes; outcomes "
          + ", ".join(f"{k}={v}" for k, v in sorted(total.items())))
    if not alive:
        failures.append(f"server died during the run (status {rc})")
    elif rc != 0:
        failures.append(f"server exit status {rc} after SIGTERM")
    if SANITIZER.search(log):
        failures.append("sanitizer report in the server log")
    srv.cleanup()
    if failures:
        print("--- server log (tail)\n" + log[-6000:], file=sys.stderr)
        for f in failures:
            print("FAIL:", f, file=sys.stderr)
        print(f"fuzz-http: reproduce with --seed {a.seed}", file=sys.stderr)
        return 1
    print("fuzz-http ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
