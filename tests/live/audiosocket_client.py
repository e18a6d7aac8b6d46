#!/usr/bin/python3
"""An Asterisk AudioSocket client (Python socket), byte for byte as Asterisk's AudioSocket() speaks:
every message is 1 byte kind, 2 bytes big-endian payload length, payload. It sends the UUID, then
the call's audio in 20 ms slin frames at real time, optional DTMF / error messages, then a hangup.

    audiosocket_client.py 127.0.0.1:9092 call.wav [--uuid U] [--dtmf-at 2.0:5] [--fast]

Kinds: 0x01 UUID (16 bytes), 0x10 slin 8 kHz, 0x11..0x18 slin 12/16/24/32/44.1/48/96/192 kHz,
0x03 DTMF (1 ASCII byte), 0x00 hangup, 0xFF error. The server must never send anything but audio
or a hangup: everything it sends is returned for the caller to check."""
import argparse
import socket
import struct
import sys
import time
import uuid as uuidlib
import wave

KIND_BY_RATE = {8000: 0x10, 12000: 0x11, 16000: 0x12, 24000: 0x13, 32000: 0x14, 44100: 0x15, 48000: 0x16,
                96000: 0x17, 192000: 0x18}


def message(kind, payload=b""):
    return struct.pack(">BH", kind, len(payload)) + payload


def connect(host_port, timeout=10):
    host, port = host_port.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def drain(s):
    """What the server sent so far (non-blocking)."""
    got = b""
    s.setblocking(False)
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            got += b
    except (BlockingIOError, ConnectionResetError):
        pass
    s.setblocking(True)
    return got


def call(host_port, rate, pcm, call_uuid=None, realtime=True, dtmf=(), errors=(), frame_ms=20, hangup=True):
    """Stream one call. dtmf: [(at_s, char)]; errors: [(at_s, payload)]. Returns (uuid str,
    bytes the server sent, [(audio_end_s, t_sent)])."""
    u = uuidlib.UUID(call_uuid) if call_uuid else uuidlib.uuid4()
    s = connect(host_port)
    s.sendall(message(0x01, u.bytes))
    kind = KIND_BY_RATE[rate]
    step = rate * frame_ms // 1000 * 2
    dtmf, errors = sorted(dtmf), sorted(errors)
    sent, t0, received = [], time.monotonic(), b""
    for i in range(0, len(pcm), step):
        at = i / 2 / rate
        while dtmf and dtmf[0][0] <= at:
            s.sendall(message(0x03, dtmf.pop(0)[1].encode()))
        while errors and errors[0][0] <= at:
            s.sendall(message(0xFF, errors.pop(0)[1]))
        if realtime:
            due = t0 + at
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
        chunk = pcm[i:i + step]
        s.sendall(message(kind, chunk))
        sent.append(((i + len(chunk)) / 2 / rate, time.monotonic()))
    if hangup:
        s.sendall(message(0x00))
    s.shutdown(socket.SHUT_WR)
    s.settimeout(30)
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            received += b
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return str(u), received, sent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("host_port")
    ap.add_argument("wav")
    ap.add_argument("--uuid")
    ap.add_argument("--dtmf-at", action="append", default=[], help="SECONDS:DIGIT")
    ap.add_argument("--fast", action="store_true", help="do not pace at real time")
    a = ap.parse_args()
    with wave.open(a.wav, "rb") as w:
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    dtmf = [(float(x.split(":")[0]), x.split(":")[1]) for x in a.dtmf_at]
    u, got, _ = call(a.host_port, rate, pcm, a.uuid, not a.fast, dtmf)
    print(f"call {u} ended; the server sent {len(got)} bytes: {got.hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
