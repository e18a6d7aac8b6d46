#!/usr/bin/python3
"""A vosk-protocol WebSocket client (Debian python3-websockets), as vosk-server's test.py is used:
send a config, then the recording in 0.2 s pieces, print every reply, then {"eof" : 1}.

    vosk_client.py ws://127.0.0.1:8080/v1/stream call.wav [--piece-s 0.2] [--realtime]

As a module, stream() returns the replies with their arrival times, for the tests and the load
bench. Protocol facts: every binary message gets exactly one text reply, {"partial": ...} or
{"result": [...], "text": ...}; {"eof" : 1} gets the final result and the server closes."""
import argparse
import asyncio
import json
import sys
import time
import wave

import websockets


def read_wav(path):
    """(rate, s16le mono bytes)"""
    with wave.open(path, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit(f"{path}: need 16-bit mono WAV")
        return w.getframerate(), w.readframes(w.getnframes())


async def stream(uri, rate, pcm, piece_s=0.2, realtime=False, config=None, reset_at=None, headers=None):
    """Send pcm in pieces; return a dict: replies [(t_sent, t_reply, json)], final (eof reply),
    sent_times [(audio_end_s, t_sent)]. realtime: pace the pieces at the audio's speed."""
    piece = max(2, int(rate * piece_s) * 2)
    out = {"replies": [], "final": None, "sent": [], "t0": None}
    cfg = {"sample_rate": rate}
    cfg.update(config or {})
    async with websockets.connect(uri, max_size=None, extra_headers=headers or {}) as ws:
        await ws.send(json.dumps({"config": cfg}))
        t0 = time.monotonic()
        out["t0"] = t0
        for k, i in enumerate(range(0, len(pcm), piece)):
            if realtime:
                due = t0 + i / 2 / rate
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
            chunk = pcm[i:i + piece]
            ts = time.monotonic()
            await ws.send(chunk)
            out["sent"].append(((i + len(chunk)) / 2 / rate, ts))
            reply = await ws.recv()
            out["replies"].append((ts, time.monotonic(), json.loads(reply)))
            if reset_at is not None and k == reset_at:
                await ws.send('{"reset" : 1}')
                out["reset_reply"] = json.loads(await ws.recv())
        await ws.send('{"eof" : 1}')
        out["final"] = json.loads(await ws.recv())
        out["t_final"] = time.monotonic()
        try:
            await asyncio.wait_for(ws.recv(), 5)
            out["closed_by_server"] = False
        except websockets.ConnectionClosed:
            out["closed_by_server"] = True
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("uri")
    ap.add_argument("wav")
    ap.add_argument("--piece-s", type=float, default=0.2)
    ap.add_argument("--realtime", action="store_true")
    a = ap.parse_args()
    rate, pcm = read_wav(a.wav)
    out = asyncio.run(stream(a.uri, rate, pcm, a.piece_s, a.realtime))
    for _, _, r in out["replies"]:
        print(json.dumps(r))
    print(json.dumps(out["final"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
