#!/usr/bin/python3
"""summarize.py - tables, ratios and the plot of bench/peers/run.sh (medians over rounds).
  summarize.py --mode as-is|avx2 --results results.jsonl --clip clip.txt --out DIR"""
import argparse
import json
import os
import statistics
import subprocess

ap = argparse.ArgumentParser()
ap.add_argument("--mode", default="as-is")
ap.add_argument("--results", required=True)
ap.add_argument("--clip", required=True)
ap.add_argument("--out", required=True)
a = ap.parse_args()

rows = [json.loads(line) for line in open(a.results) if line.strip()]
groups = {}
for r in rows:
    if r.get("error"):
        continue
    groups.setdefault((r["system"], r["workers"]), []).append(r)

med = statistics.median
table = {}
for (sysname, w), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
    table[(sysname, w)] = dict(
        n=len(rs), tput=med([r["audio_s_per_wall_s"] for r in rs]), cpu=med([r.get("audio_s_per_cpu_s", 0) for r in rs]),
        p50=med([r["latency_p50_s"] for r in rs]), p95=med([r["latency_p95_s"] for r in rs]),
        rss=med([r["peak_rss_mb"] for r in rs]), threads=rs[0].get("threads_per_worker"))

lines = []
out = lines.append
load = open("/proc/loadavg").read().split()[:3]
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
out("Mode **%s**; CPU %s, %d cores; load average at the end %s; %s requests of %.0f s per run; medians of %d round(s)."
    % (a.mode, cpu, os.cpu_count(), " ".join(load), rows[0]["requests"], rows[0]["seconds"],
       max(t["n"] for t in table.values())))
out("")
out("| system | pool | threads | audio-s/s | audio-s per CPU-s | latency p50 s | p95 s | peak RSS MB |")
out("|---|---|---|---|---|---|---|---|")
for (s, w), t in table.items():
    out("| %s | %d | %s | %.2f | %.2f | %.2f | %.2f | %.0f |" % (s, w, t["threads"], t["tput"], t["cpu"], t["p50"], t["p95"],
                                                              t["rss"]))
out("")


def get(s, w):
    return table.get((s, w))


cores = os.cpu_count()
ort = get("onnxruntime", 1)
torch_best = max((t for (s, w), t in table.items() if s == "pytorch"), key=lambda t: t["tput"], default=None)
fp = get("modelpool-fp32", cores) or get("modelpool-fp32", 2)
q8 = get("modelpool-int8", cores) or get("modelpool-int8", 2)
ratios = []
if fp and ort:
    ratios.append("modelpool fp32 (pool %d) / ONNX Runtime: %.2fx throughput" % (cores, fp["tput"] / ort["tput"]))
if fp and torch_best:
    ratios.append("modelpool fp32 (pool %d) / PyTorch's best pool: %.2fx" % (cores, fp["tput"] / torch_best["tput"]))
if q8 and fp:
    ratios.append("modelpool int8 / fp32 (pool %d): %.2fx throughput" % (cores, q8["tput"] / fp["tput"]))
if q8 and ort:
    ratios.append("modelpool int8 / ONNX Runtime: %.2fx" % (q8["tput"] / ort["tput"]))
for s in ("modelpool-fp32", "modelpool-int8"):
    t = get(s, 30)
    if t:
        ratios.append("%s peak RSS at 30 workers: %.0f MB" % (s, t["rss"]))
clip = [line.split() for line in open(a.clip) if line.strip()]
if clip:
    o, t, n = (med([float(c[i]) for c in clip]) for i in (1, 2, 3))
    q = med([float(c[4]) for c in clip]) if len(clip[0]) > 4 else float("nan")
    out("Lone 8 s clip, 1 thread (median of %d rounds): modelpool %.3f s (int8 %.3f s), PyTorch %.3f s, ONNX Runtime "
        "%.3f s; modelpool / PyTorch = %.2f, modelpool / ONNX Runtime = %.2f." % (len(clip), o, q, t, n, o / t, o / n))
    out("")
for r in ratios:
    out("- " + r)
text = "\n".join(lines) + "\n"
print(text)
open(os.path.join(a.out, "summary.md"), "w").write(text)

# plot: throughput and peak RSS against pool size, one line per system
dat = os.path.join(a.out, "peers.dat")
with open(dat, "w") as f:
    for s in ("modelpool-fp32", "modelpool-int8", "pytorch", "onnxruntime"):
        f.write("# %s\n" % s)
        for (sname, w), t in table.items():
            if sname == s:
                f.write("%d %.3f %.1f\n" % (w, t["tput"], t["rss"]))
        f.write("\n\n")
png = os.path.join(a.out, "peers.png")
gp = """set terminal pngcairo size 1100,460 font ',10'
set output '%s'
set multiplot layout 1,2 title 'wav2vec2-base, %s x 8 s concurrent requests (%s)'
set logscale x 2
set xlabel 'pool size (workers / model copies / sessions)'
set key outside bottom center horizontal
set grid
set ylabel 'audio seconds per wall second'
plot '%s' index 0 w lp pt 7 t 'modelpool fp32', '' index 1 w lp pt 5 t 'modelpool int8', '' index 2 w lp pt 9 t 'PyTorch (original design)', '' index 3 w p pt 13 ps 2 t 'ONNX Runtime (1 session)'
set ylabel 'peak RSS, MB'
set logscale y
plot '%s' index 0 u 1:3 w lp pt 7 t 'modelpool fp32', '' index 1 u 1:3 w lp pt 5 t 'modelpool int8', '' index 2 u 1:3 w lp pt 9 t 'PyTorch (original design)', '' index 3 u 1:3 w p pt 13 ps 2 t 'ONNX Runtime (1 session)'
unset multiplot
""" % (png, rows[0]["requests"], a.mode, dat, dat)
try:
    subprocess.run(["gnuplot"], input=gp.encode(), check=True)
    print("plot:", png)
except (OSError, subprocess.CalledProcessError) as e:
    print("no plot (gnuplot):", e)
