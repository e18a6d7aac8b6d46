#!/usr/bin/python3
"""PyTorch's time for one clip of wav2vec2-base (random weights) on N threads: the reference side of the
single-clip bar. Debian python3-torch + python3-torchaudio; run beside bench-clip, same machine.
usage: torch-clip.py [--seconds 8] [--threads 1] [--repeat 5]"""
import argparse
import os
import statistics
import time

ap = argparse.ArgumentParser()
ap.add_argument("--seconds", type=float, default=8)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--repeat", type=int, default=5)
a = ap.parse_args()
# Debian's torch does its matrix products in OpenBLAS, whose own thread pool ignores torch.set_num_threads:
# without this, "1 thread" used ~1.8 cores on 2 (cpu time 4.8 s for 2.7 s wall). Set before torch loads it.
os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
import torch  # noqa: E402
import torchaudio  # noqa: E402

torch.set_num_threads(a.threads)  # Debian's torch defaults to 1 here; say it explicitly
torch.manual_seed(1)
model = torchaudio.models.wav2vec2_base(aux_num_out=32).eval()
x = torch.randn(1, int(a.seconds * 16000)) * 0.1
times, cpu = [], []
with torch.inference_mode():
    model(x)  # warm-up
    for _ in range(a.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        model(x)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
print(f"torch {torch.__version__} threads {a.threads}: {a.seconds:g} s clip wall median {statistics.median(times):.3f} s "
      f"min {min(times):.3f} s; cpu time median {statistics.median(cpu):.3f} s")
