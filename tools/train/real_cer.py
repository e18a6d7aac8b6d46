#!/usr/bin/python3
"""The project's real-voice indicator: greedy character error rate on the held-out real speaker.

The held-out speaker (real_voices.py: es_MX_f_Allison, Spanish telephone prompts, 8 kHz) is never trained
on or used to pick a model. The model is an English digits model, so the absolute CER on Spanish is high;
what it indicates is how well the acoustic model hears a real human voice, compared between models on the
same files. CER = character edit distance / reference characters, over the normalized transcripts (A-Z, ',
single spaces between words), one clip at a time, no lexicon. Audio goes 8 kHz -> 16 kHz with sox `rate -h`
(the engine uses soxr; the same class of resampler).

  /usr/bin/python3 tools/train/real_cer.py models/digits [OTHER_MODEL_DIR ...] [--json out.json]
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import numpy as np  # noqa: E402


def load16k(path):
    raw = subprocess.run(common.SOX + [path, "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", "16000",
                          "-", "rate", "-h", "16000"], stdout=subprocess.PIPE, check=True).stdout
    x = np.frombuffer(raw, dtype=np.int16).astype(np.float32)
    return (x - x.mean()) / np.sqrt(x.var() + 1e-7)          # do_normalize, as the feature extractor


def score(model_dir, rows, torch):
    import export_hf
    model = export_hf.load_hf_dir(model_dir)
    errs = chars = werr = words = 0
    hyps = []
    with torch.no_grad():
        for r in rows:
            logits, _ = model(torch.from_numpy(r["x"])[None])
            hyp = common.greedy_decode(logits[0].argmax(-1).tolist())
            errs += common.edit_distance(r["text"], hyp)
            chars += len(r["text"])
            rw, hw = r["text"].split(), hyp.split()
            werr += common.edit_distance(rw, hw)
            words += len(rw)
            hyps.append(hyp)
    return dict(model=model_dir, clips=len(rows), chars=chars, cer=round(100.0 * errs / max(1, chars), 2),
                wer=round(100.0 * werr / max(1, words), 2)), hyps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dirs", nargs="+")
    ap.add_argument("--heldout", default=os.path.join(common.WORK, "real-heldout", "index.jsonl"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--show", type=int, default=5, help="print this many reference/hypothesis pairs")
    a = ap.parse_args()
    torch = common.setup_torch(a.threads)
    with open(a.heldout) as f:
        rows = [json.loads(l) for l in f]
    for r in rows:
        r["x"] = load16k(r["path"])
    res = []
    for d in a.model_dirs:
        s, hyps = score(d, rows, torch)
        res.append(s)
        print("%s: held-out real speaker %s, %d clips, %d chars: greedy CER %.2f%%, WER %.2f%%" %
              (d, rows[0]["voice"], s["clips"], s["chars"], s["cer"], s["wer"]), flush=True)
        for r, h in list(zip(rows, hyps))[:a.show]:
            print("   ref: %s\n   hyp: %s" % (r["text"], h))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
