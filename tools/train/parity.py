#!/usr/bin/python3
"""Parity on the real model: greedy transcripts from torchaudio and from our C engine
(`modelpool transcribe --format json`) on evaluation clips, plus the max logit difference on
the first clip (`--dump-logits`). Exit status 1 when any transcript differs.

  /usr/bin/python3 tools/train/parity.py models/digits --cli build/modelpool [--n 60]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import numpy as np  # noqa: E402
from train import Corpus  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--cli", required=True, help="path to the modelpool binary")
    ap.add_argument("--eval", default=os.path.join(common.WORK, "eval"))
    ap.add_argument("--n", type=int, default=60, help="clips (spread over all conditions)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch = common.setup_torch(a.threads)
    import export_hf
    model = export_hf.load_hf_dir(a.model_dir)
    corpus = Corpus(a.eval, max_s=1e9)
    rows = corpus.rows[::max(1, len(corpus.rows) // a.n)][:a.n]
    diff = 0
    with tempfile.TemporaryDirectory() as tmp:
        files, ref = [], {}
        for k, r in enumerate(rows):
            p = os.path.join(tmp, "%03d-%s.wav" % (k, r["cond"]))
            s = corpus.maps.get(r["shard"])
            if s is None:
                corpus.audio(r)
                s = corpus.maps[r["shard"]]
            pcm = np.asarray(s[r["off"]:r["off"] + r["n"]], dtype=np.int16)
            with wave.open(p, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                w.writeframes(pcm.tobytes())
            # Reference from the same int16 file the engine reads.
            x = pcm.astype(np.float32) / 32768.0
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
            with torch.no_grad():
                logits, _ = model(torch.from_numpy(x)[None])
            ref[p] = (common.greedy_decode(logits[0].argmax(-1).tolist()), logits[0].numpy(), r["text"])
            files.append(p)
        out = subprocess.run([a.cli, "transcribe", "--model", a.model_dir, "--format", "json", "--workers", "1"]
                             + files, stdout=subprocess.PIPE, check=True).stdout.decode()
        got = {}
        for line in out.splitlines():
            o = json.loads(line)
            got[o["file"]] = o.get("text", "<error %s>" % o.get("error"))
        for p in files:
            # The engine prints HF's tokenizer output verbatim (upper case, a double space where
            # '|' <pad> '|' occurs); greedy_decode lower-cases and collapses spaces. Compare words.
            if " ".join((got.get(p) or "").lower().split()) != ref[p][0]:
                diff += 1
                print("DIFF %s\n  torchaudio: %s\n  engine:     %s\n  truth:      %s" %
                      (os.path.basename(p), ref[p][0], got.get(p), ref[p][2]))
        npy = os.path.join(tmp, "logits.npy")
        subprocess.run([a.cli, "transcribe", "--model", a.model_dir, "--dump-logits", npy, files[0]],
                       stdout=subprocess.DEVNULL, check=True)
        lc = np.load(npy)
        lt = ref[files[0]][1]
        md = float(np.abs(lc - lt).max()) if lc.shape == lt.shape else float("nan")
        print("logits %s vs %s, max |diff| %.2e" % (lc.shape, lt.shape, md))
    print("parity: %d/%d transcripts identical" % (len(files) - diff, len(files)))
    sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main()
