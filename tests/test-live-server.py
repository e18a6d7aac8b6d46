#!/usr/bin/python3
"""Live calls against `modelpool serve` with the embedded model, through real protocol clients
(tests/live/): test-live-server.py MODELPOOL_BINARY CASE, CASE one of
  vosk         the vosk WebSocket protocol: one reply per message, growing partials, final vs offline,
               two utterances -> two results, reset, words/alternatives formats, both ports
  audiosocket  AudioSocket calls at real time (20 ms frames): calls log lines vs offline, DTMF and
               error messages tolerated, 16 kHz kind, malformed framing closes only that call
  limits       --max-calls refusals (HTTP 503 / AudioSocket hangup), bad handshakes, unmasked
               frames, oversized messages, idle timeout, /metrics gauges
  drain        SIGTERM during calls: calls that end within --drain-s finish normally; calls still
               running then get their final result (vosk: a result message, then close 1001;
               AudioSocket: the calls log line, then a hangup); new calls are refused
  stuck_reader a vosk client that floods and never reads, then waits: when the server gives up on
               it (10 s without send progress) the client must see its connection reset, not be
               left with a dead connection it cannot detect
  drain_attack SIGTERM with hostile clients connected (a vosk client that never reads, one that
               vanishes, one stopped inside a frame; AudioSocket callers that vanish, stall inside
               a message, trickle bytes): well-behaved calls still get their finals, the server
               ends the rest and exits 0

Tolerance against the offline transcript (modelpool transcribe of the same audio): at most one
word per utterance. Each final comes from a run over its utterance with 0.3 s of context before it
and the audio up to the endpoint after it, where the offline run sees the whole file; the
normalization (do_normalize, the conv GroupNorm) and attention then differ slightly and a
borderline frame can flip. On these recordings they agree exactly today."""
import asyncio
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "live"))
try:
    import websockets
except ImportError:
    print("skipped: python3-websockets missing")
    sys.exit(77)
import audiosocket_client as asc  # noqa: E402
import vosk_client as vc  # noqa: E402

ROOT = os.path.dirname(HERE)
SAMPLE = os.path.join(ROOT, "samples", "phone-gsm.wav")


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def word_edits(a, b):
    a, b = a.split(), b.split()
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(b) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(b)]


class Server:
    def __init__(self, binary, *args):
        self.log = tempfile.NamedTemporaryFile(prefix="calls-", suffix=".jsonl", delete=False).name
        self.err = tempfile.NamedTemporaryFile(prefix="serve-", suffix=".err", delete=False)
        cmd = [binary, "serve", "--port", "0", "--workers", "2", "--audiosocket", "127.0.0.1:0", "--vosk-port", "0",
               "--calls-log", self.log] + list(args)
        self.p = subprocess.Popen(cmd, stderr=self.err, stdout=subprocess.DEVNULL)
        text = ""
        for _ in range(300):
            text = open(self.err.name).read()
            if "listening on" in text:
                break
            if self.p.poll() is not None:
                fail("server exited: " + text)
            time.sleep(0.1)
        self.http = int(re.search(r"listening on http://127.0.0.1:(\d+)", text).group(1))
        self.aport = "127.0.0.1:" + re.search(r"AudioSocket on 127.0.0.1:(\d+)", text).group(1)
        self.vport = int(re.search(r"vosk WebSocket on ws://127.0.0.1:(\d+)", text).group(1))

    def url(self, path):
        return f"http://127.0.0.1:{self.http}{path}"

    def metrics(self):
        return urllib.request.urlopen(self.url("/metrics"), timeout=10).read().decode()

    def log_lines(self):
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        self.p.terminate()
        try:
            rc = self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            fail("server ignored SIGTERM")
        errtext = open(self.err.name).read()
        check(rc == 0, f"server exit code {rc}: {errtext[-2000:]}")
        check("ERROR: AddressSanitizer" not in errtext and "ThreadSanitizer" not in errtext, errtext[-3000:])
        os.unlink(self.log)
        os.unlink(self.err.name)


def offline(binary, path, *args):
    r = subprocess.run([binary, "transcribe", *args, path], capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, r.stderr)
    return r.stdout.strip()


def write_wav(path, rate, pcm):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def two_utterances():
    """The sample, 1 s of faint line noise, the sample again (8 kHz)."""
    rate, pcm = vc.read_wav(SAMPLE)
    noise = b"".join(struct.pack("<h", ((i * 7919) % 13) - 6) for i in range(rate))
    return rate, pcm + noise + pcm


def check_replies(out, n_messages):
    check(len(out["replies"]) == n_messages, f"{len(out['replies'])} replies to {n_messages} messages")
    results, utterance = [], []
    prev = ""
    for _, _, r in out["replies"]:
        if "partial" in r:
            check(set(r) == {"partial"}, f"partial with extra keys: {r}")
            # partials grow within an utterance. The server decodes with the model's decoding.json
            # (beam search over its word list), whose best hypothesis may revise its newest words
            # as frames come ('FOUR ONE FIVE' -> 'FOUR ONE HAEI' on this sample with the v3
            # weights): every word of a partial but its last two stays in the next one. (Greedy
            # partials are strict prefixes: test-live.partial_growth.)
            was, now = prev.split(), r["partial"].split()
            check(now[:max(0, len(was) - 2)] == was[:max(0, len(was) - 2)],
                  f"partial revised more than its last two words: '{prev}' -> '{r['partial']}'")
            prev = r["partial"]
            utterance.append(prev)
        else:
            check("text" in r, f"reply is neither partial nor result: {r}")
            results.append(r)
            prev = ""
    return results


def finals_text(results, final):
    texts = [r["text"] for r in results] + ([final["text"]] if final.get("text") else [])
    return [t for t in texts if t]


def case_vosk(binary):
    srv = Server(binary)
    try:
        rate, pcm = vc.read_wav(SAMPLE)
        ref = offline(binary, SAMPLE)
        n_msgs = (len(pcm) + int(rate * 0.2) * 2 - 1) // (int(rate * 0.2) * 2)
        out = asyncio.run(vc.stream(f"ws://127.0.0.1:{srv.http}/v1/stream", rate, pcm))
        results = check_replies(out, n_msgs)
        texts = finals_text(results, out["final"])
        print("offline:", ref, "\nlive:   ", " | ".join(texts))
        check(len(texts) == 1, f"one utterance expected, got {texts}")
        check(word_edits(texts[0], ref) <= 1, f"live '{texts[0]}' vs offline '{ref}'")
        partials = [r["partial"] for _, _, r in out["replies"] if "partial" in r]
        check(len(set(partials)) >= 5, f"partials did not grow: {partials}")
        check(out["closed_by_server"], "server did not close after eof")
        words = (results or [out["final"]])[0]["result"] if results else out["final"]["result"]
        check(all(set(w) == {"conf", "end", "start", "word"} for w in words), f"word keys: {words[:1]}")
        check(all(0 <= w["start"] <= w["end"] <= len(pcm) / 2 / rate + 0.05 for w in words), "word times")

        # two utterances separated by 1 s of silence: two results, times from the stream start
        rate, pcm2 = two_utterances()
        path2 = tempfile.NamedTemporaryFile(suffix=".wav", delete=False).name
        write_wav(path2, rate, pcm2)
        out = asyncio.run(vc.stream(f"ws://127.0.0.1:{srv.vport}/", rate, pcm2))  # the vosk port, any path
        results = check_replies(out, (len(pcm2) + 3199) // 3200)
        texts = finals_text(results, out["final"])
        print("live:   ", " | ".join(texts))
        check(len(texts) == 2, f"two utterances expected, got {texts}")
        for t in texts:
            check(word_edits(t, ref) <= 1, f"utterance '{t}' vs offline '{ref}'")
        # (the whole call's offline greedy transcript runs words together across the pause, e.g.
        # "NINEEIGHTFOR": each utterance is compared with the offline transcript of its own audio)
        second = results[1] if len(results) > 1 else out["final"]
        check(second["result"][0]["start"] >= len(pcm) / 2 / rate + 0.9, "second utterance's times")

        # reset after the first utterance's audio: its final, then the stream goes on
        out = asyncio.run(vc.stream(f"ws://127.0.0.1:{srv.http}/v1/stream", rate, pcm2, reset_at=n_msgs - 1))
        r1 = out["reset_reply"]
        texts = finals_text([r for _, _, r in out["replies"] if "text" in r], out["final"])
        print("reset:  ", r1.get("text"), "| later:", texts)
        check("text" in r1, f"reset reply {r1}")
        check(word_edits(r1["text"], ref) <= 1 and len(texts) == 1 and word_edits(texts[0], ref) <= 1,
              "reset changed the transcript")

        # words: false and max_alternatives, 16 kHz input
        out = asyncio.run(vc.stream(f"ws://127.0.0.1:{srv.http}/v1/stream", rate, pcm,
                                    config={"words": False}))
        check(set(out["final"]) == {"text"}, f"words=false final: {out['final']}")
        out = asyncio.run(vc.stream(f"ws://127.0.0.1:{srv.http}/v1/stream", rate, pcm,
                                    config={"max_alternatives": 2}))
        check("alternatives" in out["final"], f"alternatives: {out['final']}")
        out = asyncio.run(vc.stream(f"ws://127.0.0.1:{srv.http}/v1/stream", rate, pcm,
                                    config={"phrase_list": ["one", "five", "nine", "[unk]"]}))
        words = " ".join(finals_text([r for _, _, r in out["replies"] if "text" in r], out["final"])).split()
        check(words and set(words) <= {"ONE", "FIVE", "NINE"}, f"phrase_list not applied: {words}")
        os.unlink(path2)
        m = srv.metrics()
        check(re.search(r"modelpool_live_partial_latency_seconds_count [1-9]", m), "partial latency metric")
        check(re.search(r"modelpool_live_final_latency_seconds_count [1-9]", m), "final latency metric")
        check("modelpool_live_calls_active 0" in m, "calls active after the calls")
    finally:
        srv.stop()
    print("vosk: ok")


def case_audiosocket(binary):
    srv = Server(binary)
    try:
        rate, pcm2 = two_utterances()
        rate1, pcm1 = vc.read_wav(SAMPLE)
        ref = offline(binary, SAMPLE)
        result = {}

        def good_call():
            result["call"] = asc.call(srv.aport, rate, pcm2, "11111111-2222-3333-4444-555555555555",
                                      dtmf=[(2.0, "5"), (7.0, "#")], errors=[(3.0, b"\x01")])

        t = threading.Thread(target=good_call)
        t.start()
        time.sleep(1.0)
        # a dashboard follows the call: GET /v1/calls/{uuid}/events (Server-Sent Events)
        sse = {"events": []}

        def follow():
            with urllib.request.urlopen(srv.url("/v1/calls/11111111-2222-3333-4444-555555555555/events"),
                                        timeout=60) as r:
                sse["type"] = r.headers.get("Content-Type")
                name = None
                for raw in r:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: ") and name:
                        sse["events"].append((name, json.loads(line[6:])))
                        if name == "end":
                            return

        ft = threading.Thread(target=follow)
        ft.start()
        try:
            urllib.request.urlopen(srv.url("/v1/calls/00000000-0000-0000-0000-000000000000/events"), timeout=10)
            fail("events of an unknown call")
        except urllib.error.HTTPError as e:
            check(e.code == 404, f"unknown call: {e.code}")
        # malformed framing on other connections while the good call runs: each closes only itself
        for bad in (asc.message(0x42, b"xx"),                       # unknown kind
                    asc.message(0x01, b"short"),                    # UUID not 16 bytes
                    struct.pack(">BH", 0x10, 1000) + b"\0" * 10,    # length past what arrives
                    asc.message(0x01, bytes(16)) + asc.message(0x10, pcm1[:3200]) + asc.message(0x12, pcm1[:640])):
            s = asc.connect(srv.aport)
            s.sendall(bad)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10)
            got = b""
            try:
                while True:
                    b = s.recv(100)
                    if not b:
                        break
                    got += b
            except socket.timeout:
                fail("server kept a malformed connection open")
            check(got == b"", f"server sent {got!r} on a malformed call")
            s.close()
        # an early close without a hangup, mid-call
        s = asc.connect(srv.aport)
        s.sendall(asc.message(0x01, bytes(range(16))) + asc.message(0x10, pcm1[:16000]))
        s.close()
        # a 16 kHz call (kind 0x12), fast
        pcm16 = b"".join(pcm1[i:i + 2] * 2 for i in range(0, len(pcm1), 2))  # sample-and-hold upsampling
        u16, got16, _ = asc.call(srv.aport, 16000, pcm16, realtime=False)
        t.join()
        ft.join(30)
        names = [n for n, _ in sse["events"]]
        print("events:", {n: names.count(n) for n in set(names)})
        check(sse.get("type") == "text/event-stream", f"content type {sse.get('type')}")
        check(names.count("final") == 2 and names[-1] == "end", f"SSE events {names}")
        check(names.count("partial") >= 5 and names.count("dtmf") >= 1, f"SSE partials/dtmf {names}")
        u, got, _ = result["call"]
        check(got == b"", f"server sent {got!r} to a normal call")
        check(got16 == b"", "server sent bytes to the 16 kHz call")
        time.sleep(0.5)
        lines = srv.log_lines()
        finals = [ln for ln in lines if ln["uuid"] == u and "text" in ln]
        events = [ln for ln in lines if ln["uuid"] == u and "event" in ln]
        print("offline:", ref)
        for ln in finals:
            print(f"  [{ln['start']:.2f}-{ln['end']:.2f}] {ln['text']}")
        check(len(finals) == 2, f"two utterances expected in the calls log, got {len(finals)}")
        for ln in finals:
            check(word_edits(ln["text"], ref) <= 1, f"'{ln['text']}' vs offline '{ref}'")
            check(set(ln) >= {"uuid", "start", "end", "text", "words"}, f"log line keys {sorted(ln)}")
            check(all(ln["start"] - 1e-6 <= w["start"] <= w["end"] <= ln["end"] + 1e-6 for w in ln["words"]),
                  "word times inside the utterance")
        check(finals[1]["start"] >= len(pcm1) / 2 / rate, "second utterance is call-relative")
        check(sorted(e["value"] for e in events if e["event"] == "dtmf") == ["#", "5"], f"DTMF events {events}")
        check(any(e["event"] == "error" for e in events), "error message not logged")
        # the 16 kHz call against the offline transcript of the same 16 kHz audio, one word per
        # utterance (the live tolerance): sample-and-hold leaves images above 4 kHz that the model
        # mishears (v1 weights offline: 'ONE ONE NINE FIVE ...', v3: 'FOUR ONE NINE ... NINEIS'), so
        # the 8 kHz sample's transcript is no reference; audio taken at the wrong rate would be
        f16 = [ln for ln in lines if ln["uuid"] == u16 and "text" in ln]
        path16 = tempfile.NamedTemporaryFile(suffix=".wav", delete=False).name
        write_wav(path16, 16000, pcm16)
        ref16 = offline(binary, path16)
        os.unlink(path16)
        print("16 kHz call: offline", ref16, "| live", [ln["text"] for ln in f16])
        check(f16 and word_edits(" ".join(ln["text"] for ln in f16), ref16) <= len(f16), f"16 kHz call: {f16}")
        check("modelpool_live_calls_active 0" in srv.metrics(), "calls left active")
    finally:
        srv.stop()
    print("audiosocket: ok")


def raw_http(port, req):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(req)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            b = s.recv(4096)
            if not b:
                break
            data += b
    finally:
        s.close()
    return data.decode(errors="replace")


def case_limits(binary):
    srv = Server(binary, "--max-calls", "2", "--call-idle-s", "2")
    try:
        rate, pcm = vc.read_wav(SAMPLE)

        async def hold_two():
            uri = f"ws://127.0.0.1:{srv.http}/v1/stream"
            a = await websockets.connect(uri)
            b = await websockets.connect(uri)
            await a.send(pcm[:3200])
            await a.recv()
            await b.send(pcm[:3200])
            await b.recv()
            # a third WebSocket is refused with 503 before the upgrade
            try:
                await websockets.connect(uri)
                fail("third call accepted at --max-calls 2")
            except websockets.InvalidStatusCode as e:
                check(e.status_code == 503, f"status {e.status_code}")
            # a third AudioSocket call hears a hangup, and nothing else
            s = asc.connect(srv.aport)
            s.settimeout(10)
            got = s.recv(16)
            check(got == b"\x00\x00\x00", f"refused AudioSocket call got {got!r}")
            s.close()
            check("modelpool_live_calls_active 2" in srv.metrics(), "gauge at two calls")
            check(re.search(r"modelpool_live_calls_refused_total [2-9]", srv.metrics()), "refusals counted")
            await a.close()
            # idle timeout: b sends nothing for 2 s and is closed by the server
            try:
                await asyncio.wait_for(b.recv(), 10)
                fail("idle call got a message")
            except websockets.ConnectionClosed as e:
                check(e.code == 1001, f"idle close code {e.code} (1001 expected)")

        asyncio.run(hold_two())
        # bad handshakes
        r = raw_http(srv.http, b"GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        check(" 426 " in r.split("\r\n")[0], f"no Upgrade: {r[:80]}")
        r = raw_http(srv.http, b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n")
        check(" 400 " in r.split("\r\n")[0], f"bad key: {r[:80]}")

        # an unmasked client frame: close 1002, and the server goes on serving
        s = socket.create_connection(("127.0.0.1", srv.http), timeout=10)
        s.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        check(b"101" in head.split(b"\r\n")[0] and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head, f"handshake {head!r}")
        s.sendall(b"\x82\x04abcd")
        frame = b""
        while len(frame) < 4:
            b = s.recv(64)
            if not b:
                break
            frame += b
        check(frame[:1] == b"\x88" and frame[2:4] == b"\x03\xea", f"expected close 1002, got {frame!r}")
        s.close()
        # a message over the 1 MiB limit: close 1009
        async def too_big():
            async with websockets.connect(f"ws://127.0.0.1:{srv.http}/v1/stream", max_size=None) as ws:
                await ws.send(b"\0" * ((1 << 20) + 2))
                try:
                    await asyncio.wait_for(ws.recv(), 10)
                    fail("oversized message answered")
                except websockets.ConnectionClosed as e:
                    check(e.code == 1009, f"oversized message: close code {e.code} (1009 expected)")
        asyncio.run(too_big())
        out = asyncio.run(vc.stream(f"ws://127.0.0.1:{srv.http}/v1/stream", rate, pcm))
        check(out["final"].get("text") or any("text" in r for _, _, r in out["replies"]), "server still serves")
    finally:
        srv.stop()
    # --api-key-file: the key goes in the handshake (Authorization: Bearer), on both ports
    keyfile = tempfile.NamedTemporaryFile("w", suffix=".keys", delete=False)
    keyfile.write("# test\nsecret-live-key\n")
    keyfile.close()
    srv = Server(binary, "--api-key-file", keyfile.name)
    try:
        for uri in (f"ws://127.0.0.1:{srv.http}/v1/stream", f"ws://127.0.0.1:{srv.vport}/"):
            try:
                asyncio.run(vc.stream(uri, rate, pcm[:3200]))
                fail("WebSocket accepted without the API key")
            except websockets.InvalidStatusCode as e:
                check(e.status_code == 401, f"no key: status {e.status_code}")
            out = asyncio.run(vc.stream(uri, rate, pcm[:16000], headers={"Authorization": "Bearer secret-live-key"}))
            check(len(out["replies"]) == 5, "with the key the call runs")
    finally:
        srv.stop()
        os.unlink(keyfile.name)
    print("limits: ok")


def case_drain(binary):
    drain = 10  # the calls that end in the drain need ~4 s after the signal (more under sanitizers)
    srv = Server(binary, "--drain-s", str(drain))
    rate, pcm = vc.read_wav(SAMPLE)
    ref = offline(binary, SAMPLE)
    long_pcm = b"\0" * 8000 + pcm * 5  # 25.6 s: still running when the drain ends
    res = {}

    async def vosk_long():
        """Real-time 0.2 s pieces until the server closes: every reply, and the close code."""
        out = {"replies": [], "code": None}
        async with websockets.connect(f"ws://127.0.0.1:{srv.http}/v1/stream", max_size=None) as ws:
            await ws.send(json.dumps({"config": {"sample_rate": rate}}))
            t0 = time.monotonic()
            try:
                for i in range(0, len(long_pcm), 3200):
                    await asyncio.sleep(max(0, t0 + i / 2 / rate - time.monotonic()))
                    await ws.send(long_pcm[i:i + 3200])
                    out["replies"].append(json.loads(await ws.recv()))
            except websockets.ConnectionClosed:
                pass
            try:  # what came before the close (a send can fail while a reply waits to be read)
                while True:
                    out["replies"].append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
            except websockets.ConnectionClosed as e:
                out["code"] = e.code
        return out

    async def vosk_calls():
        short = vc.stream(f"ws://127.0.0.1:{srv.http}/v1/stream", rate, pcm, realtime=True)
        res["short"], res["long"] = await asyncio.gather(short, vosk_long())

    def as_long():
        s = asc.connect(srv.aport)
        u = "22222222-3333-4444-5555-666666666666"
        s.sendall(asc.message(0x01, bytes.fromhex(u.replace("-", ""))))
        t0 = time.monotonic()
        try:
            for i in range(0, len(long_pcm), 320):
                time.sleep(max(0, t0 + i / 2 / rate - time.monotonic()))
                s.sendall(asc.message(0x10, long_pcm[i:i + 320]))
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(20)
        got = b""
        try:
            while True:
                b = s.recv(100)
                if not b:
                    break
                got += b
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
        res["as_long"] = (u, got, time.monotonic() - t0)

    def as_short():
        res["as_short"] = asc.call(srv.aport, rate, pcm, "33333333-4444-5555-6666-777777777777")

    threads = [threading.Thread(target=f) for f in (lambda: asyncio.run(vosk_calls()), as_long, as_short)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    t_signal = time.monotonic()
    srv.p.send_signal(signal.SIGTERM)
    time.sleep(1.0)  # the signal is seen within 200 ms, the listener closes within 200 ms more
    # new calls are refused while draining: the AudioSocket listener is closed, HTTP answers 503
    try:
        asc.connect(srv.aport, timeout=5).close()
        fail("AudioSocket connection accepted while draining")
    except OSError:
        pass
    try:
        urllib.request.urlopen(srv.url("/ready"), timeout=10)
        fail("ready while draining")
    except urllib.error.HTTPError as e:
        check(e.code == 503, f"/ready while draining: {e.code}")
    for t in threads:
        t.join(60)
    try:
        rc = srv.p.wait(30)
    except subprocess.TimeoutExpired:
        srv.p.kill()
        fail("server did not stop after the drain")
    t_end = time.monotonic() - t_signal
    errtext = open(srv.err.name).read()
    check(rc == 0, f"server exit code {rc}: {errtext[-2000:]}")
    check("ERROR: AddressSanitizer" not in errtext and "ThreadSanitizer" not in errtext, errtext[-3000:])
    check(t_end < drain + 12, f"stop took {t_end:.1f} s after the signal")
    lines = srv.log_lines()
    os.unlink(srv.log)
    os.unlink(srv.err.name)
    for k in ("short", "long", "as_short", "as_long"):
        check(k in res, f"call '{k}' failed (see the exception above); server log: {errtext[-1500:]}")

    # calls that end within the drain are not cut: the whole transcript, a normal close
    short = res["short"]
    texts = finals_text([r for _, _, r in short["replies"] if "text" in r], short["final"])
    print("offline:", ref, "\nvosk call ending in the drain:", texts)
    check(len(short["replies"]) == (len(pcm) + 3199) // 3200, "every message answered during the drain")
    check(len(texts) == 1 and word_edits(texts[0], ref) <= 1, f"vosk call in the drain: {texts}")
    check(short["closed_by_server"], "no close after eof")
    u, got, _ = res["as_short"]
    mine = [ln["text"] for ln in lines if ln.get("uuid") == u and "text" in ln]
    print("AudioSocket call ending in the drain:", mine)
    check(got == b"", f"server sent {got!r} to a call that hung up itself")
    check(len(mine) == 1 and word_edits(mine[0], ref) <= 1, f"AudioSocket call in the drain: {mine}")

    # calls still running at the end of the drain: their final result, then the close
    lg = res["long"]
    results = [r for r in lg["replies"] if "text" in r]
    spoken = " ".join(r["text"] for r in results if r["text"]).split()
    print("vosk call cut at the drain's end:", lg["code"], [r["text"] for r in results])
    check(lg["code"] == 1001, f"close code {lg['code']} (1001 expected)")
    check(lg["replies"] and "text" in lg["replies"][-1], f"last message before the close: {lg['replies'][-1:]}")
    check(len(spoken) >= 10 and word_edits(" ".join(spoken[:10]), ref) <= 1, f"vosk words before the cut: {spoken}")
    u, got, dur = res["as_long"]
    mine = " ".join(ln["text"] for ln in lines if ln.get("uuid") == u and "text" in ln).split()
    print("AudioSocket call cut at the drain's end:", got, mine)
    check(got == b"\x00\x00\x00", f"AudioSocket call ended by the server got {got!r} (a hangup expected)")
    check(dur < len(long_pcm) / 2 / rate - 2, f"AudioSocket call ran {dur:.1f} s: not cut")
    check(len(mine) >= 10 and word_edits(" ".join(mine[:10]), ref) <= 1, f"AudioSocket words before the cut: {mine}")
    print("drain: ok")


def ws_frame(op, payload):
    """A masked client frame (RFC 6455 5.2), mask 0 so the payload goes as it is."""
    n = len(payload)
    head = bytes([0x80 | op]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
    return head + b"\0\0\0\0" + payload


def case_stuck_reader(binary):
    """A vosk client that never reads: empty audio messages (each answered) until its writes block
    (its messages back up behind the server's replies, which back up in turn), then silence. The server's send gives up
    after 10 s without progress, lingers 2 s and closes. Before the fix that close was a FIN
    queued behind the unsent replies (it never arrives) with nothing unread (the linger drained
    it), so no reset either: the client's socket stayed ESTABLISHED, and a client still writing
    hit an orphan that acknowledged nothing (drain_attack hung 60 s once in ten runs this way).
    The client must see a reset (POLLERR/POLLHUP without reading)."""
    srv = Server(binary)
    sk = socket.socket()
    sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sk.connect(("127.0.0.1", srv.http))
    sk.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        b = sk.recv(1)  # byte by byte: nothing past the handshake is taken
        check(b != b"", "server closed during the handshake")
        head += b
    check(head.startswith(b"HTTP/1.1 101"), f"handshake: {head[:80]!r}")
    sk.sendall(ws_frame(1, b'{"config": {"sample_rate": 8000}}'))
    sk.setblocking(False)
    msg, sent, last = ws_frame(2, b"") * 64, 0, time.monotonic()
    while time.monotonic() - last < 2.0:  # until writes have been blocked for 2 s
        try:
            sent += sk.send(msg)
            last = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
    t_stall = last
    print(f"stuck reader: {sent} bytes sent, writes blocked since {time.monotonic() - t_stall:.1f} s")
    po = select.poll()
    po.register(sk, select.POLLERR | select.POLLHUP)  # not POLLIN: replies are waiting, unread
    # The reset comes 10 s (the send timeout) + 2 s (the linger) after the server's writes stopped,
    # which can be well after ours: the server still answers the messages queued in its receive
    # buffer (13.9 s after here, 26.6 s under ASan, 70 s under TSan). Without the fix it never
    # comes (the client waited 22 s and more): the limit only has to be far beyond these.
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    ev = po.poll((150 if re.search(r"lib[at]san|libubsan", ldd) else 90) * 1000)
    t_reset = time.monotonic() - t_stall
    state = subprocess.run(["ss", "-tn", "state", "all", f"( sport = :{srv.http} or dport = :{srv.http} )"],
                           capture_output=True, text=True).stdout
    sk.close()
    print(f"connection ended {t_reset:.1f} s after the writes blocked: {ev}")
    check(ev and ev[0][1] & (select.POLLERR | select.POLLHUP),
          f"no reset {t_reset:.1f} s after the writes blocked; sockets:\n{state}")
    urllib.request.urlopen(srv.url("/health"), timeout=10).read()  # the server goes on serving
    srv.stop()
    print("stuck_reader: ok")


def case_drain_attack(binary):
    """SIGTERM while hostile or broken live clients are connected next to well-behaved ones: a vosk
    client that never reads its replies (a tiny receive buffer, so the server's sends block), one
    that vanishes without a close frame, one that stops inside a frame; AudioSocket callers that
    vanish inside a message (RST), stall inside one, or trickle a byte at a time. The well-behaved
    calls, which end within the drain, must get their whole transcript; every other connection is
    ended by the server; the server exits 0 (under the sanitizer build: no leak, no error)."""
    drain = 10  # with the 4 s before the signal: long enough for the flood to fill the reply path
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    slack = 6.0 if re.search(r"lib[at]san|libubsan", ldd) else 0.0  # sanitizers: final passes run ~5x slower
    srv = Server(binary, "--drain-s", str(drain))
    rate, pcm = vc.read_wav(SAMPLE)
    ref = offline(binary, SAMPLE)
    long_pcm = b"\0" * 8000 + pcm * 5
    uri = f"ws://127.0.0.1:{srv.http}/v1/stream"
    res = {}
    signalled = threading.Event()

    async def good_vosk():
        res["good_vosk"] = await vc.stream(uri, rate, pcm, realtime=True)

    async def never_reads():
        """Empty audio messages as fast as it can (each is answered; no network work, so the flood
        does not slow the machine), never reading a reply: the server's replies back up."""
        sk = socket.socket()
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        sk.connect(("127.0.0.1", srv.http))
        sent, t0 = 0, time.monotonic()
        try:
            async with websockets.connect(uri, sock=sk, max_queue=1, max_size=None, ping_interval=None,
                                          close_timeout=1) as ws:
                await ws.send(json.dumps({"config": {"sample_rate": rate}}))
                while time.monotonic() - t0 < drain + 40:
                    await asyncio.wait_for(ws.send(b""), 60)
                    sent += 1
        except (websockets.ConnectionClosed, asyncio.TimeoutError, OSError):
            pass
        res["never_reads"] = (sent, time.monotonic() - res["t_signal"])

    async def vanishes():
        """Real time until a second after the signal, then the TCP connection just goes (no close)."""
        n = 0
        async with websockets.connect(uri, max_size=None) as ws:
            await ws.send(json.dumps({"config": {"sample_rate": rate}}))
            t0 = time.monotonic()
            for i in range(0, len(long_pcm), 1600):
                await asyncio.sleep(max(0, t0 + i / 2 / rate - time.monotonic()))
                await ws.send(long_pcm[i:i + 1600])
                await ws.recv()
                n += 1
                if signalled.is_set() and time.monotonic() - res["t_signal"] > 1.0:
                    break
            ws.transport.abort()
        res["vanishes"] = n

    async def half_frame():
        """Some audio, then a binary frame header for 3200 bytes followed by 100 of them, and silence."""
        async with websockets.connect(uri, max_size=None, ping_interval=None, close_timeout=1) as ws:
            await ws.send(json.dumps({"config": {"sample_rate": rate}}))
            for i in range(0, 16000, 3200):
                await ws.send(long_pcm[i:i + 3200])
                await ws.recv()
            ws.transport.write(bytes([0x82, 0x80 | 126]) + struct.pack(">H", 3200) + b"\1\2\3\4" + b"\0" * 100)
            code, got = "still open", []
            try:
                while True:
                    got.append(json.loads(await asyncio.wait_for(ws.recv(), drain + 40)))
            except websockets.ConnectionClosed as e:
                code = e.code
            except asyncio.TimeoutError:
                pass
            res["half_frame"] = (code, got, time.monotonic() - res["t_signal"])

    async def vosk_all():
        await asyncio.gather(good_vosk(), never_reads(), vanishes(), half_frame())

    def wait_closed(s, limit):
        """Read until the server closes (or resets) the connection: what it sent, and when."""
        s.settimeout(limit)
        got = b""
        try:
            while True:
                b = s.recv(100)
                if not b:
                    break
                got += b
        except socket.timeout:
            got = None
        except ConnectionResetError:
            pass
        return got

    def as_good():
        res["as_good"] = asc.call(srv.aport, rate, pcm, "44444444-5555-6666-7777-888888888888")

    def as_vanish():
        s = asc.connect(srv.aport)
        s.sendall(asc.message(0x01, bytes.fromhex("55555555666677778888999999999999")))
        t0 = time.monotonic()
        for i in range(0, len(long_pcm), 320):
            time.sleep(max(0, t0 + i / 2 / rate - time.monotonic()))
            s.sendall(asc.message(0x10, long_pcm[i:i + 320]))
            if signalled.is_set() and time.monotonic() - res["t_signal"] > 1.0:
                break
        s.sendall(b"\x10\x01")  # half a header
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST
        res["as_vanish"] = True

    def as_stall():
        s = asc.connect(srv.aport)
        s.sendall(asc.message(0x01, bytes.fromhex("66666666777788889999aaaaaaaaaaaa")))
        for i in range(0, 16000, 320):
            s.sendall(asc.message(0x10, long_pcm[i:i + 320]))
        s.sendall(b"\x10\x01\x40" + b"\0" * 10)  # 320 bytes announced, 10 sent
        got = wait_closed(s, drain + 40)
        s.close()
        res["as_stall"] = (got, time.monotonic() - res["t_signal"])

    def as_trickle():
        """A byte every 50 ms (an audio message every 16 s): far slower than real time, never idle."""
        s = asc.connect(srv.aport)
        s.sendall(asc.message(0x01, bytes.fromhex("77777777888899990000bbbbbbbbbbbb")))
        data = b"".join(asc.message(0x10, long_pcm[i:i + 320]) for i in range(0, 32000, 320))
        t0 = time.monotonic()
        try:
            for b in data:
                s.sendall(bytes([b]))
                s.settimeout(0.05)
                try:
                    if s.recv(100) == b"":
                        break
                except socket.timeout:
                    pass
                if time.monotonic() - t0 > drain + 40:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.close()
        res["as_trickle"] = time.monotonic() - res["t_signal"]

    res["t_signal"] = time.monotonic() + 4.0  # when the signal will go (clients time their ends from it)
    threads = [threading.Thread(target=f) for f in (lambda: asyncio.run(vosk_all()), as_good, as_vanish, as_stall,
                                                     as_trickle)]
    for t in threads:
        t.start()
    time.sleep(max(0, res["t_signal"] - time.monotonic()))
    res["t_signal"] = time.monotonic()
    srv.p.send_signal(signal.SIGTERM)
    signalled.set()
    # the server's own exit time, apart from how long the clients take to notice it
    exited = {}

    def wait_exit():
        exited.update(rc=srv.p.wait(), t=time.monotonic() - res["t_signal"])
        # What is left of the server's side of its connections half a second after the exit: an
        # orphan (FIN-WAIT, data queued behind a shut window) shows here; a reset one does not
        # (TIME-WAIT, the end of a clean close, is left out).
        time.sleep(0.5)
        exited["left"] = subprocess.run(["ss", "-Htn", "state", "connected", "exclude", "time-wait", "sport", "=",
                                         f":{srv.http}"],
                                        capture_output=True, text=True).stdout.strip()

    waiter = threading.Thread(target=wait_exit)
    waiter.start()
    for t in threads:
        t.join(drain + 60)
    waiter.join(30)
    if "rc" not in exited:
        srv.p.kill()
        fail("server did not stop after the drain")
    rc, t_end = exited["rc"], exited["t"]
    t_clients = time.monotonic() - res["t_signal"]
    errtext = open(srv.err.name).read()
    check(rc == 0, f"server exit code {rc}: {errtext[-3000:]}")
    check("Sanitizer" not in errtext, errtext[-3000:])
    lines = srv.log_lines()
    os.unlink(srv.log)
    os.unlink(srv.err.name)
    for k in ("good_vosk", "never_reads", "vanishes", "half_frame", "as_good", "as_vanish", "as_stall", "as_trickle"):
        check(k in res, f"client '{k}' failed (see the exception above); server log: {errtext[-1500:]}")
    print(f"server stopped {t_end:.1f} s after the signal (drain {drain} s); the last client ended at {t_clients:.1f} s")
    # once the drain is over a send gives up after 1 s without progress (not 10 s: 14.5 s here
    # before), and the vosk connections linger up to 2 s for the client's close
    check(t_end < drain + 5.5 + slack, f"stop took {t_end:.1f} s after the signal")

    good = res["good_vosk"]
    texts = finals_text([r for _, _, r in good["replies"] if "text" in r], good["final"])
    print("offline:", ref, "\nwell-behaved vosk call:", texts)
    check(len(good["replies"]) == (len(pcm) + 3199) // 3200, "every message of the good vosk call answered")
    check(len(texts) == 1 and word_edits(texts[0], ref) <= 1, f"good vosk call: {texts}")
    check(good["closed_by_server"], "no close after eof")
    u, got, _ = res["as_good"]
    mine = [ln["text"] for ln in lines if ln.get("uuid") == u and "text" in ln]
    print("well-behaved AudioSocket call:", mine)
    check(got == b"" and len(mine) == 1 and word_edits(mine[0], ref) <= 1, f"good AudioSocket call: {got!r} {mine}")

    # every other connection is ended by the server soon after the drain (times from the signal)
    sent, dur = res["never_reads"]
    print(f"never-reading client: {sent} messages, disconnected {dur:.1f} s after the signal")
    # The server resets it. Its own kernel may drop that reset: with its receive window shut, a
    # reset whose sequence number is not exactly the next one it expects (an ACK of the last bytes
    # still in flight) is out of window (RFC 5961 section 3), and the client then learns only when
    # its next retransmission meets the closed port, seconds later after backoff (seen in ~1 of 15
    # runs with the cores saturated: told at 23.5 s, the server out at 12.2 s). So: told in time,
    # or the server left nothing of the connection behind (no orphan).
    check(dur < drain + 5 + slack or (t_end < drain + 5.5 + slack and exited.get("left") == ""),
          f"the non-reading client was not disconnected (told at {dur:.1f} s; left on the server's port: "
          f"{exited.get('left')!r})")
    code, got, dur = res["half_frame"]
    print("client stopped inside a frame:", code, got, f"{dur:.1f} s")
    # ended at the drain's end like any running call: its final result, then close 1001
    check(code == 1001 and got and "text" in got[-1] and dur < drain + 3 + slack, f"half-frame client: {code} {got}")
    got, dur = res["as_stall"]
    print("AudioSocket caller stalled inside a message:", got, f"{dur:.1f} s")
    check(got == b"\x00\x00\x00" and dur < drain + 3 + slack, f"stalled caller: {got!r} {dur:.1f} s")  # a hangup
    print(f"AudioSocket trickler ended {res['as_trickle']:.1f} s after the signal")
    check(res["as_trickle"] < drain + 3 + slack, "the trickling caller was not ended")
    print("drain_attack: ok")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: test-live-server.py MODELPOOL CASE")
    cases = {"vosk": case_vosk, "audiosocket": case_audiosocket, "limits": case_limits, "drain": case_drain,
             "stuck_reader": case_stuck_reader, "drain_attack": case_drain_attack}
    cases[sys.argv[2]](sys.argv[1])
