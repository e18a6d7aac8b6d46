#!/usr/bin/python3
"""torch-pool.py - the original design in PyTorch, for bench/peers/run.sh: ModelPool(pool_size) with one shared
processor step (normalization), pool_size model copies handed out through a FIFO queue.Queue (get_model() blocks,
release_model() in `finally`), R threads submitting one request each at once. Prints one JSON object with the
fields `modelpool bench --format json` uses. Models are loaded and warmed up before timing (the design loads lazily;
that would only add load time to its figures).

  /usr/bin/python3 torch-pool.py --model DIR --clip clip.f32 [--pool 4] [--requests 30] [--threads 1]
Debian python3-torch (CPU, OpenBLAS through libblas.so.3) + python3-torchaudio.
"""
import argparse
import json
import os
import queue
import resource
import sys
import threading
import time

# Debian's torch does its products in OpenBLAS, whose own threads ignore torch.set_num_threads: without this each
# of pool 2's copies ran 2 OpenBLAS threads on 2 cores, spinning against each other (4.98 audio-s/s at pool 2,
# 6.88 with it, Zen 3). Each copy gets --threads in all; set before numpy or torch loads OpenBLAS.
if "--threads" in sys.argv[1:-1]:
    os.environ["OPENBLAS_NUM_THREADS"] = sys.argv[sys.argv.index("--threads") + 1]
else:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
import export_hf  # noqa: E402  (HF directory -> torchaudio model)


class ModelPool:
    def __init__(self, model_dir, pool_size):
        self.free = queue.Queue()
        self.lock = threading.Lock()
        self.waits = []
        for _ in range(pool_size):  # one copy of the weights per pool slot, as the design does
            self.free.put(export_hf.load_hf_dir(model_dir))

    def get_model(self):
        t = time.perf_counter()
        m = self.free.get()
        with self.lock:
            self.waits.append(time.perf_counter() - t)
        return m

    def release_model(self, m):
        self.free.put(m)


def processor(x):
    """Wav2Vec2FeatureExtractor do_normalize"""
    x64 = x.astype(np.float64)
    return torch.from_numpy(((x64 - x64.mean()) / np.sqrt(x64.var() + 1e-7)).astype(np.float32))[None]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--pool", type=int, default=4)
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)  # Debian's torch defaults to 1 here; say it
    clip = np.fromfile(a.clip, dtype=np.float32)
    t0 = time.perf_counter()
    pool = ModelPool(a.model, a.pool)
    with torch.inference_mode():
        for m in list(pool.free.queue):
            m(processor(clip))  # warm-up
    load_s = time.perf_counter() - t0
    pool.waits.clear()
    lat = [0.0] * a.requests
    start = threading.Barrier(a.requests + 1)

    def request(i):
        start.wait()
        t = time.perf_counter()
        m = pool.get_model()
        try:
            with torch.inference_mode():
                logits = m(processor(clip))[0]
            logits.argmax(-1)
        finally:
            pool.release_model(m)
        lat[i] = time.perf_counter() - t

    th = [threading.Thread(target=request, args=(i,)) for i in range(a.requests)]
    for t in th:
        t.start()
    c0 = time.process_time()
    start.wait()
    w0 = time.perf_counter()
    for t in th:
        t.join()
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0
    seconds = len(clip) / 16000
    s = sorted(lat)
    q = lambda p: s[min(len(s) - 1, max(0, int(np.ceil(p * len(s))) - 1))]  # noqa: E731
    print(json.dumps(dict(system="pytorch", version=torch.__version__, workers=a.pool, copies=a.pool,
                          threads_per_worker=a.threads, requests=a.requests, seconds=seconds, wall_s=wall,
                          audio_s_per_wall_s=a.requests * seconds / wall, latency_p50_s=q(0.5), latency_p95_s=q(0.95),
                          avg_wait_s=float(np.mean(pool.waits)), max_wait_s=max(pool.waits),
                          peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, load_s=load_s,
                          cpu_s=cpu, audio_s_per_cpu_s=a.requests * seconds / cpu)))


if __name__ == "__main__":
    main()
