#!/usr/bin/python3
"""make_int8_reference.py - PyTorch's own int8 reference for the engine's int8 path (tests/test-int8.c).

For each model directory (the committed random `base_like` parity fixture and the embedded digits model) and
each committed parity input (tests/data/ref/inputs/in{0,1}.npy), writes torchaudio's logits in fp32 and after
`torch.ao.quantization.quantize_dynamic` (every nn.Linear: q/k/v/out projections, feed-forward, feature
projection, lm_head; int8 weights per tensor, activations quantized per call; Debian's engine is onednn):

    OUT/<name>-in<i>-fp32.npy    float32 [frames, vocab]
    OUT/<name>-in<i>-qdyn.npy    float32 [frames, vocab]

Debian python3-torch 1.13 + python3-torchaudio 0.13.1, no other package. Deterministic (no random state):

    /usr/bin/python3 tools/make_int8_reference.py --out tests/data/ref/int8

`--only digits` regenerates the embedded model's files alone (tools/train/ship.sh, after new weights): the
base_like fp32 logits come out within ~1e-5 of the committed ones, not bit for bit, on another machine.
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "train"))
import export_hf  # noqa: E402  (load_hf_dir: HF directory -> torchaudio model)

ROOT = os.path.dirname(HERE)
MODELS = {"base_like": os.path.join(ROOT, "tests/data/ref/base_like"), "digits": os.path.join(ROOT, "models/digits")}


def normalize(x):
    """Wav2Vec2FeatureExtractor do_normalize (both models set it), as tools/make_reference.py does."""
    x64 = x.astype(np.float64)
    return ((x64 - x64.mean()) / np.sqrt(x64.var() + 1e-7)).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/data/ref/int8"))
    ap.add_argument("--only", choices=sorted(MODELS), help="one model's files only")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(1)
    # Debian builds torch without fbgemm; its x86 engine is oneDNN (reduce_range activations as fbgemm)
    torch.backends.quantized.engine = "onednn"
    for name, d in MODELS.items():
        if a.only and name != a.only:
            continue
        fp = export_hf.load_hf_dir(d)
        # in place on a second copy: deepcopy fails on the weight-normed positional conv
        q = torch.ao.quantization.quantize_dynamic(export_hf.load_hf_dir(d), {torch.nn.Linear}, dtype=torch.qint8,
                                                   inplace=True)
        for i in range(2):
            x = np.load(os.path.join(ROOT, "tests/data/ref/inputs/in%d.npy" % i))
            xt = torch.from_numpy(normalize(x))[None]
            with torch.inference_mode():
                for tag, m in (("fp32", fp), ("qdyn", q)):
                    logits = m(xt)[0][0].numpy().astype(np.float32)
                    np.save(os.path.join(a.out, "%s-in%d-%s.npy" % (name, i, tag)), logits)
            print(name, "in%d" % i, logits.shape)


if __name__ == "__main__":
    main()
