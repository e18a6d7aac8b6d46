#!/usr/bin/python3
"""make-model.py - the shared inputs of bench/peers/run.sh, written once into OUT (default
/var/tmp/modelpool-peers):

  OUT/model/        random wav2vec2-base weights (torchaudio's initialization, seed 1) as a HuggingFace
                    Wav2Vec2ForCTC directory (tools/hf_export.py), read by modelpool and by the PyTorch pool
  OUT/model.onnx    the same torch module exported with torch.onnx.export (input [1, n] normalized audio,
                    output logits [1, frames, 32]); no `onnx` Python package needed
  OUT/clip.wav      the 8 s clip (16 kHz, 16-bit): a chirp plus noise, seed 1
  OUT/clip.f32      the same samples as raw float32 (int16 / 32768), what the peers read

Debian python3-torch 1.13 + python3-torchaudio 0.13.1 only.
  /usr/bin/python3 bench/peers/make-model.py [--out DIR]
"""
import argparse
import os
import sys
import wave

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import hf_export as hx  # noqa: E402

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|"] + list("ETAONIHSRDLUMWCFGYPBVK'XJQZ")  # base-960h


class Logits(torch.nn.Module):
    """torchaudio's model returns (logits, lengths); ONNX gets the logits alone."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("MP_PEERS_DIR", "/var/tmp/modelpool-peers"))
    ap.add_argument("--seconds", type=float, default=8.0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(1)
    cfg = hx.hf_config(vocab_size=len(VOCAB))
    model = hx.build_model(cfg).eval()
    hx.export_hf_dir(model, cfg, VOCAB, os.path.join(a.out, "model"))

    n = int(a.seconds * 16000)
    t = np.arange(n) / 16000.0
    rng = np.random.default_rng(1)
    x = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.02 * rng.standard_normal(n)
    pcm16 = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
    with wave.open(os.path.join(a.out, "clip.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm16.tobytes())
    (pcm16.astype(np.float32) / 32768.0).tofile(os.path.join(a.out, "clip.f32"))

    xt = torch.zeros(1, n)
    torch.onnx.export(Logits(model), xt, os.path.join(a.out, "model.onnx"), input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {1: "samples"}, "logits": {1: "frames"}},
                      opset_version=14, do_constant_folding=True)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
