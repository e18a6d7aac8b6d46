"""harden_http.py - helpers for the server hardening tests and the HTTP fuzzer (standard library only):
start `modelpool serve`, send raw HTTP/1.1 requests over a socket (so malformed ones can be sent too),
build multipart bodies, read a process's peak RSS."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time


class Server:
    """`modelpool serve --arch tiny --port 0 ARGS`; the port is read from its log."""

    def __init__(self, binary, args, arch="tiny", env=None, wait_s=60):
        self.log_path = tempfile.mktemp(prefix="mp-serve-", suffix=".log")
        self.log = open(self.log_path, "wb")
        cmd = [binary, "serve", "--arch", arch, "--port", "0"] + list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        self.host, self.port = None, None
        deadline = time.time() + wait_s
        while time.time() < deadline:
            m = re.search(r"listening on http://(\[[^\]]+\]|[^:/]+):(\d+)", self.text())
            if m:
                self.host, self.port = m.group(1).strip("[]"), int(m.group(2))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("server did not start: " + self.text()[-2000:])

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def peak_rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL after `timeout` s. Returns the exit status (negative: signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


class Response:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        import json
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.reason} {self.headers} {self.body[:300]!r}>"


def connect(port, host="127.0.0.1", src=None, timeout=30):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect((host, port))
    return s


def build(method, path, headers=(), body=b"", host="x", content_length=True):
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    if content_length and (body or method in ("POST", "PUT")):
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def read_all(s):
    out = b""
    while True:
        try:
            d = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not d:
            break
        out += d
    return out


def dechunk(b):
    out, pos = b"", 0
    while pos < len(b):
        end = b.find(b"\r\n", pos)
        if end < 0:
            break
        n = int(b[pos:end].split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out += b[end + 2:end + 2 + n]
        pos = end + 2 + n + 2
    return out


def parse(raw):
    """Parse one response (skipping 1xx interim responses). None when nothing came back."""
    while raw.startswith(b"HTTP/1.1 1") or raw.startswith(b"HTTP/1.0 1"):
        raw = raw[raw.find(b"\r\n\r\n") + 4:]
    if b"\r\n\r\n" not in raw:
        return None
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:] if ":" in l]
    r = Response(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body)
    if (r.header("Transfer-Encoding") or "").lower() == "chunked":
        r.body = dechunk(body)
    return r


def request(port, method, path, headers=(), body=b"", host="127.0.0.1", src=None, timeout=60, raw=None):
    """One request on a new connection; None when the server sent nothing back (or refused)."""
    try:
        s = connect(port, host, src, timeout)
    except OSError:
        return None
    try:
        s.sendall(raw if raw is not None else build(method, path, headers, body))
    except OSError:
        pass  # the server may answer (and close) before the whole body is sent
    try:
        return parse(read_all(s))
    finally:
        s.close()


def multipart(parts, boundary="XXB", close=True):
    """parts: (name, filename, data) with name or filename None to leave them out."""
    out = b""
    for name, filename, data in parts:
        disp = "form-data"
        if name is not None:
            disp += f'; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + (data if isinstance(data, bytes) else data.encode()) + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return out


def post_form(port, parts, headers=(), host="127.0.0.1", timeout=120, path="/v1/audio/transcriptions", src=None):
    body = multipart(parts)
    h = [("Content-Type", "multipart/form-data; boundary=XXB")] + list(headers)
    return request(port, "POST", path, h, body, host=host, timeout=timeout, src=src)
