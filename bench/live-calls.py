#!/usr/bin/python3
"""Load bench: N simultaneous live calls at real-time pace against one `modelpool serve`, half over the
vosk WebSocket protocol and half over Asterisk AudioSocket, each fed 20 ms frames on its own timer.

    bench/live-calls.py [--binary build/modelpool] [--calls 30] [--workers 2] [--json out.json]

Calls are digit strings synthesized with espeak-ng (telephone band, 8 kHz), 3-4 utterances with
1.0-1.6 s pauses, ~20 s per call (--audio gsm-coded: through the GSM codec; --audio phone: real GSM
speech, samples/phone-gsm.wav 1-3 times). Reports:
  lag            how late a call's frames went out against its own timer. A vosk client waits for each
                 reply before the next frame (as vosk's test.py does), so a server that falls behind
                 shows here; AudioSocket frames are not answered, so their lag only shows the sender
                 (a server backlog shows in their final latency). A vosk call more than its duration
                 + 20 s behind stops sending (counted in gave_up).
  partial        per word: first reply whose partial (or result) holds the word, minus when the audio
                 of the word's end was sent (vosk calls: partials go back on the socket)
  final          final result minus when the audio at the end of the endpoint silence (last word's
                 end + --endpoint-s) was sent (both protocols; AudioSocket through the calls log)
  words          lost (deleted) / duplicated (inserted) / substituted vs the offline transcript of
                 the same recording through the same server (POST /v1/audio/transcriptions)
  compute        server CPU seconds (all threads: network, decoding) per audio second, live vs offline;
                 also the pool's worker busy seconds (the network alone)
Decoding: serve --beam 16 with the model's word list (the embedded model's recommended mode) for
both, so words are whole (greedy output runs words together at pauses, e.g. "TWOFOUR").
Targets (issue 13): no call behind, partial p95 <= 1.0 s, final p95 <= 1.0 s, compute <= 2x offline.
Runs in about 1-2 minutes; exit 1 when a call fails."""
import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid as uuidlib
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "live"))
import audiosocket_client as asc  # noqa: E402
import vosk_client as vc  # noqa: E402
import websockets  # noqa: E402

DIGITS = "zero one two three four five six seven eight nine".split()
VOICES = ["en-us", "en", "en-gb-scotland", "en-029", "en-us+f3", "en+m3"]


def synth_call(path, rng, voice):
    """3-4 digit-string utterances with pauses, 8 kHz s16 mono."""
    tmp = path + ".parts"
    os.makedirs(tmp, exist_ok=True)
    parts = []
    for k in range(rng.randint(3, 4)):
        text = " ".join(rng.choice(DIGITS) for _ in range(rng.randint(3, 6)))
        raw = os.path.join(tmp, f"{k}.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rng.randint(140, 170)), "-w", raw, text], check=True)
        out = os.path.join(tmp, f"{k}-8k.wav")
        pad = f"{rng.uniform(1.0, 1.6):.2f}"
        subprocess.run(["sox", raw, "-r", "8000", "-c", "1", "-b", "16", out, "sinc", "300-3400", "pad", "0.3", pad],
                       check=True, stderr=subprocess.DEVNULL)
        parts.append(out)
    subprocess.run(["sox", *parts, path], check=True)
    with wave.open(path, "rb") as w:
        return w.getnframes() / w.getframerate()


def phone_call(path, copies):
    """samples/phone-gsm.wav `copies` times with 1.5 s of silence after each (real GSM speech)."""
    sample = os.path.join(ROOT, "samples", "phone-gsm.wav")
    pause = path + ".pause.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", pause, "trim", "0", "1.5"], check=True)
    subprocess.run(["sox", *([sample, pause] * copies), path], check=True)
    os.unlink(pause)
    with wave.open(path, "rb") as w:
        return w.getnframes() / w.getframerate()


def gsm_code(path):
    """Through the GSM 06.10 full-rate codec and back, in place."""
    g = path + ".gsm"
    subprocess.run(["sox", path, "-t", "gsm", g], check=True)
    subprocess.run(["sox", "-t", "gsm", "-r", "8000", "-c", "1", g, "-b", "16", "-e", "signed-integer", path], check=True)
    os.unlink(g)


def align(hyp, ref):
    """(substitutions, deletions = lost, insertions = duplicated) of hyp against ref, word level."""
    h, r = hyp.split(), ref.split()
    d = [[(0, 0, 0, 0)] * (len(h) + 1) for _ in range(len(r) + 1)]
    for i in range(1, len(r) + 1):
        d[i][0] = (i, 0, i, 0)
    for j in range(1, len(h) + 1):
        d[0][j] = (j, 0, 0, j)
    for i in range(1, len(r) + 1):
        for j in range(1, len(h) + 1):
            c, s, dl, ins = d[i - 1][j - 1]
            sub = (c + (r[i - 1] != h[j - 1]), s + (r[i - 1] != h[j - 1]), dl, ins)
            c, s, dl, ins = d[i - 1][j]
            de = (c + 1, s, dl + 1, ins)
            c, s, dl, ins = d[i][j - 1]
            it = (c + 1, s, dl, ins + 1)
            d[i][j] = min(sub, de, it)
    return d[len(r)][len(h)][1:]


def pct(v, q):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


def metric(text, name):
    m = re.search(r"^" + re.escape(name) + r" ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


class Server:
    def __init__(self, binary, workers, log, extra):
        self.err = tempfile.NamedTemporaryFile(prefix="live-bench-", suffix=".err", delete=False)
        cmd = [binary, "serve", "--port", "0", "--workers", str(workers), "--audiosocket", "127.0.0.1:0",
               "--calls-log", log, "--max-calls", "200", "--queue", "0"] + extra
        self.p = subprocess.Popen(cmd, stderr=self.err, stdout=subprocess.DEVNULL)
        for _ in range(300):
            text = open(self.err.name).read()
            if "listening on" in text:
                break
            if self.p.poll() is not None:
                sys.exit("server exited: " + text)
            time.sleep(0.1)
        self.http = int(re.search(r"listening on http://127.0.0.1:(\d+)", text).group(1))
        self.aport = "127.0.0.1:" + re.search(r"AudioSocket on 127.0.0.1:(\d+)", text).group(1)

    def cpu_s(self):
        """utime + stime of the server process, seconds (all its threads: network, decoding, I/O)."""
        f = open(f"/proc/{self.p.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def metrics(self):
        return urllib.request.urlopen(f"http://127.0.0.1:{self.http}/metrics", timeout=30).read().decode()

    def transcribe(self, path):
        boundary = "liveBench" + uuidlib.uuid4().hex
        data = open(path, "rb").read()
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
                f"Content-Type: audio/wav\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.http}/v1/audio/transcriptions", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return json.loads(urllib.request.urlopen(req, timeout=120).read())["text"]

    def stop(self):
        self.p.terminate()
        self.p.wait(60)
        os.unlink(self.err.name)


async def vosk_call(uri, rate, pcm, start_at, res, k_rec):
    """One vosk call: 20 ms messages on the call's own timer, each awaiting its reply."""
    step = rate // 50 * 2
    rec = {"proto": "vosk", "lag": 0.0, "replies": [], "sent": [], "ok": False, "k": k_rec}
    try:
        await asyncio.sleep(max(0, start_at - time.time()))
        async with websockets.connect(uri, max_size=None) as ws:
            await ws.send(json.dumps({"config": {"sample_rate": rate}}))
            t0 = time.time()
            give_up = t0 + 2 * len(pcm) / 2 / rate + 20  # keeps the bench under its time budget
            for k, i in enumerate(range(0, len(pcm), step)):
                due = t0 + k * 0.02
                if time.time() > give_up:
                    rec["gave_up"] = True
                    break
                now = time.time()
                if due > now:
                    await asyncio.sleep(due - now)
                ts = time.time()
                rec["lag"] = max(rec["lag"], ts - due)
                rec["lag_end"] = ts - due
                await ws.send(pcm[i:i + step])
                rec["sent"].append(((i + step) / 2 / rate, ts))
                reply = json.loads(await ws.recv())
                rec["replies"].append((time.time(), reply))
            await ws.send('{"eof" : 1}')
            rec["eof"] = json.loads(await ws.recv())
            rec["ok"] = True
    except Exception as e:  # noqa: BLE001 - a failed call is reported, not fatal to the others
        rec["error"] = repr(e)
    res.append(rec)


def audiosocket_call(host_port, rate, pcm, start_at, res, k_rec):
    rec = {"proto": "audiosocket", "ok": False, "k": k_rec}
    try:
        time.sleep(max(0, start_at - time.time()))
        t0 = time.time()
        u, got, sent = asc.call(host_port, rate, pcm)
        # asc.call paces with time.monotonic(); map its send times to the wall clock
        off = time.time() - time.monotonic()
        rec.update(uuid=u, got=got, sent=[(a, t + off) for a, t in sent], t0=t0, ok=got == b"")
        if got:
            rec["error"] = f"server sent {got!r}"
        # lag: a frame sent later than its slot on the call's timer
        lag = [(t + off) - (sent[0][1] + off) - (a - 0.02) for a, t in sent]
        rec["lag"], rec["lag_end"] = max(lag), lag[-1]
    except Exception as e:  # noqa: BLE001
        rec["error"] = repr(e)
    res.append(rec)


def send_time(sent, pos):
    for a, t in sent:
        if a >= pos - 1e-9:
            return t
    return sent[-1][1]


def vosk_latencies(rec, endpoint_s):
    partial, final, texts = [], [], []
    seen_words, seen_t = [], []  # per reply: words in the current partial
    for t, r in rec["replies"]:
        if "partial" in r:
            n = len(r["partial"].split())
            while len(seen_t) < n:
                seen_t.append(t)
        else:
            words = r.get("result", [])
            texts.append(r["text"])
            for k, w in enumerate(words):
                t_first = seen_t[k] if k < len(seen_t) else t
                partial.append(t_first - send_time(rec["sent"], w["end"]))
            if words:
                final.append(t - send_time(rec["sent"], words[-1]["end"] + endpoint_s))
            seen_t = []
    if rec.get("eof", {}).get("text"):
        texts.append(rec["eof"]["text"])
    return partial, final, " ".join(t for t in texts if t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "modelpool"))
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--recordings", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--endpoint-s", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--beam", type=int, default=16, help="serve --beam: 16 with the model's word list (default), 0 greedy")
    ap.add_argument("--json")
    ap.add_argument("--verbose", action="store_true", help="print calls whose words differ from offline")
    ap.add_argument("--audio", choices=["synth", "gsm-coded", "phone"], default="synth",
                    help="synth: the espeak-ng calls; gsm-coded: the same through the GSM 06.10 codec (sox); "
                         "phone: real GSM telephone speech (samples/phone-gsm.wav 1-3 times with 1.5 s pauses)")
    ap.add_argument("--write-recordings", metavar="DIR",
                    help="only synthesize the recordings into DIR (call0.wav ...) and exit (bench/live-compute.sh)")
    ap.add_argument("serve_args", nargs="*", help="more `modelpool serve` options (after --)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    tmp = a.write_recordings or tempfile.mkdtemp(prefix="live-bench-")
    os.makedirs(tmp, exist_ok=True)
    files, durs = [], []
    for k in range(a.recordings):
        p = os.path.join(tmp, f"call{k}.wav")
        if a.audio == "phone":
            durs.append(phone_call(p, k % 3 + 1))
        else:
            durs.append(synth_call(p, rng, VOICES[k % len(VOICES)]))
            subprocess.run(["rm", "-rf", p + ".parts"])
        if a.audio == "gsm-coded":
            gsm_code(p)
        files.append(p)
    if a.write_recordings:
        print("\n".join(files))
        return 0
    log = os.path.join(tmp, "calls.jsonl")
    srv = Server(a.binary, a.workers, log, ["--endpoint-s", str(a.endpoint_s), "--beam", str(a.beam)] + a.serve_args)
    try:
        # offline: the same recordings through the same server and workers
        m0 = srv.metrics()
        c0 = srv.cpu_s()
        t0 = time.time()
        ref = [srv.transcribe(p) for p in files]
        off_wall = time.time() - t0
        m1 = srv.metrics()
        off_cpu = srv.cpu_s() - c0
        off_busy = metric(m1, "modelpool_busy_seconds_total") - metric(m0, "modelpool_busy_seconds_total")
        off_audio = sum(durs)
        # live: all calls at once, staggered starts over the first 3 s
        pcms = []
        for p in files:
            with wave.open(p, "rb") as w:
                pcms.append(w.readframes(w.getnframes()))
        start = time.time() + 1.0
        res_v, res_a, threads = [], [], []
        vosk_jobs = []
        for i in range(a.calls):
            k = i % a.recordings
            at = start + 3.0 * i / a.calls
            if i % 2 == 0:
                vosk_jobs.append((k, vosk_call(f"ws://127.0.0.1:{srv.http}/v1/stream", 8000, pcms[k], at, res_v, k)))
            else:
                t = threading.Thread(target=audiosocket_call, args=(srv.aport, 8000, pcms[k], at, res_a, k))
                t.start()
                threads.append((k, t))
        m2 = srv.metrics()
        c2 = srv.cpu_s()
        t_live0 = time.time()

        async def run_all():
            await asyncio.gather(*(j for _, j in vosk_jobs))

        asyncio.run(run_all())
        for _, t in threads:
            t.join()
        time.sleep(1.0)
        live_wall = time.time() - t_live0
        m3 = srv.metrics()
        live_cpu = srv.cpu_s() - c2
        live_busy = metric(m3, "modelpool_busy_seconds_total") - metric(m2, "modelpool_busy_seconds_total")
        live_audio = sum(durs[i % a.recordings] for i in range(a.calls))
        lines = [json.loads(x) for x in open(log) if x.strip()]
    finally:
        srv.stop()

    partial, final, lags, lag_end, failed = [], [], [], [], 0
    subs = lost = dup = ref_words = 0
    per_call = []
    gave_up = sum(1 for rec in res_v if rec.get("gave_up"))
    for rec in res_v:
        if not rec["ok"]:
            failed += 1
            print("vosk call failed:", rec.get("error"))
            continue
        p, f, text = vosk_latencies(rec, a.endpoint_s)
        partial += p
        final += f
        lags.append(rec["lag"])
        lag_end.append(rec["lag_end"])
        per_call.append(("vosk", rec["k"], text))
    for rec in res_a:
        if not rec["ok"]:
            failed += 1
            print("audiosocket call failed:", rec.get("error"))
            continue
        lags.append(rec["lag"])
        lag_end.append(rec["lag_end"])
        mine = [ln for ln in lines if ln.get("uuid") == rec["uuid"] and "text" in ln]
        for ln in mine:
            if ln["words"]:
                final.append(ln["time"] - send_time(rec["sent"], ln["words"][-1]["end"] + a.endpoint_s))
        per_call.append(("audiosocket", rec["k"], " ".join(ln["text"] for ln in mine if ln["text"])))
    for proto, k, text in per_call:
        s, d, i = align(text, ref[k])
        if a.verbose and (s or d or i):
            print(f"{proto} call on recording {k}: live '{text}'\n  offline '{ref[k]}'")
        subs, lost, dup, ref_words = subs + s, lost + d, dup + i, ref_words + len(ref[k].split())
    summary = {
        "calls": a.calls, "failed": failed, "gave_up": gave_up, "workers": a.workers, "audio_s_per_call": round(sum(durs) / len(durs), 1),
        "live_wall_s": round(live_wall, 1),
        "lag_max_s": round(max(lags) if lags else float("nan"), 3), "lag_p95_s": round(pct(lags, 0.95), 3),
        "lag_at_end_max_s": round(max(lag_end) if lag_end else float("nan"), 3),
        "partial_p50_s": round(pct(partial, 0.5), 3), "partial_p95_s": round(pct(partial, 0.95), 3),
        "final_p50_s": round(pct(final, 0.5), 3), "final_p95_s": round(pct(final, 0.95), 3),
        "n_partial_words": len(partial), "n_finals": len(final),
        "ref_words": ref_words, "lost_words": lost, "duplicated_words": dup, "substituted_words": subs,
        "offline_busy_per_audio_s": round(off_busy / off_audio, 4) if off_audio else None,
        "live_busy_per_audio_s": round(live_busy / live_audio, 4) if live_audio else None,
        "offline_wall_s": round(off_wall, 2),
        "offline_cpu_per_audio_s": round(off_cpu / off_audio, 4), "live_cpu_per_audio_s": round(live_cpu / live_audio, 4),
        "lag_by_call_s": [round(x, 2) for x in lags],
    }
    if summary["offline_busy_per_audio_s"]:
        summary["busy_live_vs_offline"] = round(summary["live_busy_per_audio_s"] / summary["offline_busy_per_audio_s"], 2)
    if off_cpu > 0:
        summary["compute_live_vs_offline"] = round((live_cpu / live_audio) / (off_cpu / off_audio), 2)
    print(json.dumps(summary, indent=1))
    print("targets: none behind (every call's lag at its end < 0.5 s): %s; partial p95 <= 1.0 s: %s; "
          "final p95 <= 1.0 s: %s; compute <= 2x: %s"
          % (summary["lag_at_end_max_s"] < 0.5, summary["partial_p95_s"] <= 1.0, summary["final_p95_s"] <= 1.0,
             summary.get("compute_live_vs_offline", 99) <= 2.0))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    subprocess.run(["rm", "-rf", tmp])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
