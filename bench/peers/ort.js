#!/usr/bin/env node
// ort.js - ONNX Runtime side of bench/peers/run.sh: R concurrent requests of one clip through ONE
// InferenceSession (how an ORT server shares weights; concurrent run() calls on it queue), or a lone
// clip repeated. Prints one JSON object with the fields `modelpool bench --format json` uses.
//   node ort.js --model model.onnx --clip clip.f32 [--requests 30] [--threads 2] [--repeat 1]
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? process.argv[i + 1] : def;
}

// Wav2Vec2FeatureExtractor do_normalize, per request (what the processor does before the model)
function normalize(x) {
  let s = 0, q = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  const mean = s / x.length;
  for (let i = 0; i < x.length; i++) q += (x[i] - mean) * (x[i] - mean);
  const inv = 1 / Math.sqrt(q / x.length + 1e-7), out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (x[i] - mean) * inv;
  return out;
}

function peakRssMb() {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

function quantile(a, p) {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

async function main() {
  const model = arg('model'), clipPath = arg('clip');
  const requests = Number(arg('requests', '30')), threads = Number(arg('threads', '2'));
  const buf = fs.readFileSync(clipPath);
  const clip = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const t0 = performance.now();
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const one = async () => {
    const x = normalize(clip);
    const out = await sess.run({input: new ort.Tensor('float32', x, [1, x.length])});
    return out.logits.dims[1];
  };
  await one(); // warm-up, as the other two systems get
  const loadS = (performance.now() - t0) / 1000;
  const cpu0 = process.cpuUsage(), w0 = performance.now();
  const lat = await Promise.all(Array.from({length: requests}, async () => {
    const s = performance.now();
    await one();
    return (performance.now() - s) / 1000;
  }));
  const wall = (performance.now() - w0) / 1000, cpu = process.cpuUsage(cpu0);
  const seconds = clip.length / 16000, cpuS = (cpu.user + cpu.system) / 1e6;
  console.log(JSON.stringify({
    system: 'onnxruntime', version: require('onnxruntime-node/package.json').version, workers: 1,
    threads_per_worker: threads, requests, seconds, wall_s: wall, audio_s_per_wall_s: requests * seconds / wall,
    latency_p50_s: quantile(lat, 0.5), latency_p95_s: quantile(lat, 0.95), peak_rss_mb: peakRssMb(), load_s: loadS,
    cpu_s: cpuS, audio_s_per_cpu_s: requests * seconds / cpuS,
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
