#!/usr/bin/python3
"""30 GSM lines transcribing at once through one ModelPool, as the original design simulates them.

Each line is a thread that does what the design's line handler does: take a model from the pool, load
its recording at 16 kHz, processor -> model -> argmax -> batch_decode, give the model back in `finally`.
At the end it prints each line's transcript and wait, the pool's statistics, and the design's checks.

    examples/gsm_lines.py                          # embedded model, samples/phone-gsm.wav on every line
    examples/gsm_lines.py --audio call.wav --model DIR --lines 40 --pool 5
    examples/gsm_lines.py --arch base --seconds 8 --json   # benchmark: random wav2vec2-base, 8 s clips

--mode transcribe uses pool.transcribe() per line instead of the processor/model steps. --json prints one
object (wall_s, audio_s_per_wall_s, waits, latencies, peak_rss_mb, cpu_s) for bench/python-vs-c.sh.
Run from a checkout: PYTHONPATH=python examples/gsm_lines.py (or after `pip install ./python`).
"""
import argparse
import json
import math
import os
import random
import resource
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))  # a checkout's package, if not installed

import modelpool  # noqa: E402

try:
    import numpy as np
except ImportError:
    np = None


def synthetic_clip(seconds, rate=16000, seed=1):
    """Noise plus a few tones, deterministic: a stand-in for speech when timing random weights."""
    rng = random.Random(seed)
    n = int(seconds * rate)
    tones = [(rng.uniform(100, 3000), rng.uniform(0.05, 0.2)) for _ in range(4)]
    x = [0.02 * rng.uniform(-1, 1) + sum(a * math.sin(2 * math.pi * f * i / rate) for f, a in tones)
         for i in range(n)]
    return np.asarray(x, dtype=np.float32) if np is not None else x


def peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Line:
    """One GSM line's request and what it observed."""

    def __init__(self, number):
        self.number = number
        self.text = None
        self.error = None
        self.wait = self.latency = 0.0
        self.processor_id = self.model_id = None

    def run(self, pool, speech, mode, start):
        start.wait()
        t0 = time.monotonic()
        try:
            if mode == "transcribe":
                self.text = pool.transcribe(speech, sample_rate=16000).text
                self.wait = float("nan")
            else:
                processor, model, device = pool.get_model()
                self.wait = time.monotonic() - t0
                try:
                    inputs = processor(speech, sampling_rate=16000, return_tensors="np")
                    logits = model(inputs.input_values).logits
                    self.text = processor.batch_decode(logits.argmax(-1))[0]
                    self.processor_id, self.model_id = id(processor), id(model)
                finally:
                    pool.release_model(model)
        except Exception as e:  # a line reports its failure; the others go on
            self.error = f"{type(e).__name__}: {e}"
        self.latency = time.monotonic() - t0


def quantile(v, q):
    v = sorted(v)
    if not v:
        return 0.0
    pos = q * (len(v) - 1)
    i = int(pos)
    return v[i] if i >= len(v) - 1 else v[i] + (pos - i) * (v[i + 1] - v[i])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=30, help="concurrent lines (threads), default 30")
    ap.add_argument("--pool", type=int, default=4, help="pool_size, default 4 (the design's choice for 30 lines)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--model", help="model directory (default: the embedded digits model)")
    src.add_argument("--arch", help="random weights of a named architecture (base, large, tiny)")
    ap.add_argument("--audio", help="recording every line transcribes (default: samples/phone-gsm.wav, "
                                    "or a synthetic clip with --seconds)")
    ap.add_argument("--seconds", type=float, help="use a synthetic clip of this length instead")
    ap.add_argument("--threads", type=int, default=0, help="BLAS threads per worker (default cores / pool)")
    ap.add_argument("--mode", choices=("design", "transcribe"), default="design")
    ap.add_argument("--json", action="store_true", help="one JSON object of figures instead of the report")
    ap.add_argument("--check", action="store_true", help="exit 1 unless every line succeeded and the checks hold")
    a = ap.parse_args()

    if a.seconds:
        speech = synthetic_clip(a.seconds)
    else:
        path = a.audio or os.path.join(os.path.dirname(HERE), "samples", "phone-gsm.wav")
        speech, _ = modelpool.load_audio(path, sr=16000)  # the design: librosa.load(wav, sr=16000)
    audio_s = len(speech) / 16000.0

    t_load = time.monotonic()
    pool = modelpool.ModelPool(pool_size=a.pool, model_dir=a.model, arch=a.arch, threads_per_worker=a.threads,
                               preload=a.json, stuck_lease_s=0)
    pool.load()
    load_s = time.monotonic() - t_load
    lines = [Line(i + 1) for i in range(a.lines)]
    start = threading.Barrier(a.lines + 1)
    threads = [threading.Thread(target=ln.run, args=(pool, speech, a.mode, start), name=f"line-{ln.number}")
               for ln in lines]
    for t in threads:
        t.start()
    t0, cpu0 = time.monotonic(), time.process_time()
    start.wait()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    stats = pool.get_statistics()
    pool.close()

    ok = [ln for ln in lines if ln.error is None]
    waits = [ln.wait for ln in ok if not math.isnan(ln.wait)]
    lat = [ln.latency for ln in ok]
    figures = {
        "mode": a.mode, "lines": a.lines, "pool_size": stats["pool_size"], "seconds": audio_s,
        "wall_s": wall, "audio_s_per_wall_s": len(ok) * audio_s / wall if wall > 0 else 0.0,
        "avg_wait_s": stats["avg_wait_time"], "max_wait_s": stats["max_wait_time"],
        "line_max_wait_s": max(waits) if waits else None,  # as the lines saw it (design mode)
        "latency_p50_s": quantile(lat, 0.5), "latency_p95_s": quantile(lat, 0.95),
        "peak_rss_mb": peak_rss_mb(), "load_s": load_s, "cpu_s": cpu,
        "audio_s_per_cpu_s": len(ok) * audio_s / cpu if cpu > 0 else 0.0,
        "errors": a.lines - len(ok),
    }
    checks = {
        "processor is shared": a.mode == "transcribe" or len({ln.processor_id for ln in ok}) == 1,
        f"pool has {a.pool} models": a.mode == "transcribe" or len({ln.model_id for ln in ok}) == min(a.pool, a.lines),
        "load balancing works": all(n > 0 for n in stats["worker_requests"][:min(a.pool, a.lines)]),
        "thread-safe works": (len(ok) == a.lines and stats["busy_models"] == 0 and len({ln.text for ln in ok}) == 1
                              and stats["completed"] == a.lines),
    }
    if a.json:
        figures["checks"] = checks
        print(json.dumps(figures))
    else:
        for ln in lines:
            what = ln.text if ln.error is None else "ERROR " + ln.error
            wait = "" if math.isnan(ln.wait) else f"waited {ln.wait:5.2f} s, "
            print(f"line {ln.number:2d}: {wait}done in {ln.latency:5.2f} s: {what}")
        print(f"\n{a.lines} lines x {audio_s:.1f} s through pool_size={stats['pool_size']}: {wall:.2f} s, "
              f"{figures['audio_s_per_wall_s']:.1f} audio-s per s, peak RSS {figures['peak_rss_mb']:.0f} MB")
        print("statistics:", {k: stats[k] for k in ("pool_size", "total_requests", "avg_wait_time",
                                                    "available_models", "busy_models")})
        print(f"  max wait {stats['max_wait_time']:.2f} s, requests per model {stats['worker_requests']}")
        if stats["avg_wait_time"] > 1.0:
            print("  avg_wait_time > 1 s: the design's advice is a larger pool_size")
        for name, good in checks.items():
            print(("  " if good else "  FAILED: ") + name)
    return 0 if (not a.check or all(checks.values())) else 1


if __name__ == "__main__":
    sys.exit(main())
