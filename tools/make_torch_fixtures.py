#!/usr/bin/python3
"""make_torch_fixtures.py - PyTorch-checkpoint fixtures for the pytorch_model.bin loader tests.

Re-saves the weights of the committed parity models (tests/data/ref/<config>/model.safetensors,
whose torchaudio logits are committed next to them) with torch.save, in the layouts HuggingFace
repositories ship, so a test can require logits identical to the safetensors version:

    OUT/f32/        ref/base_like as pytorch_model.bin (fp32, ZIP format). Layer 0's q/k/v
                    projections are views of one shared storage (offsets), and its out_proj is a
                    transposed view of a transposed copy (non-contiguous strides).
    OUT/fp16/       ref/fp16 as pytorch_model.bin in float16.
    OUT/sharded/    ref/large_like as pytorch_model-0000{1,2}-of-00002.bin + pytorch_model.bin.index.json.
    OUT/legacy/     ref/odd saved with _use_new_zipfile_serialization=False (the pre-1.6 stream).
    OUT/st-sharded/ ref/bf16 as model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json.
    OUT/multilang/  ref/utf8 as pytorch_model.bin with a per-language vocab.json {"en": ..., "vi": ...}
                    (the "vi" entry is the model's own vocabulary).

Each directory also gets the model's config/tokenizer JSON files. Usage:
    /usr/bin/python3 tools/make_torch_fixtures.py --ref tests/data/ref --out tests/data/torch
    /usr/bin/python3 tools/make_torch_fixtures.py --ref DIR --out /tmp/w2v2-base --base-random
The second form writes a wav2vec2-base sized checkpoint with random weights (both formats, ~378 MB
each) for bench/load-formats.sh; it is never committed.
"""

import argparse
import json
import os
import shutil
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch

ST_DTYPES = {"F32": (np.float32, torch.float32), "F16": (np.float16, torch.float16), "BF16": (None, torch.bfloat16)}
JSON_FILES = ["config.json", "preprocessor_config.json", "special_tokens_map.json", "tokenizer_config.json",
              "vocab.json"]


def read_safetensors(path):
    """name -> torch tensor, in file order (the format: u64 header length, JSON header, data)."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    data = raw[8 + hlen:]
    out = OrderedDict()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        npdt, tdt = ST_DTYPES[info["dtype"]]
        chunk = bytearray(data[b:e])
        if npdt is None:  # bf16: go through int16 bits
            t = torch.frombuffer(chunk, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.from_numpy(np.frombuffer(chunk, dtype=npdt).copy())
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    """The same format, 8-byte aligned header as the safetensors library pads it."""
    header, offset, blobs = {}, 0, []
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    for name, t in tensors.items():
        t = t.contiguous()
        blob = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def copy_json(src, dst):
    os.makedirs(dst, exist_ok=True)
    for name in JSON_FILES:
        if os.path.exists(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))


def shard(tensors, n):
    names = list(tensors)
    k = (len(names) + n - 1) // n
    return [OrderedDict((m, tensors[m]) for m in names[i * k:(i + 1) * k]) for i in range(n)]


def write_index(path, shards, fmt):
    total = sum(t.numel() * t.element_size() for s in shards for t in s.values())
    weight_map = OrderedDict()
    for i, s in enumerate(shards):
        for name in s:
            weight_map[name] = fmt.format(i + 1, len(shards))
    with open(path, "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")


def views(sd, prefix):
    """Layer 0's q/k/v as slices of one storage; out_proj as a non-contiguous view, same values."""
    p = prefix + "encoder.layers.0.attention."
    qkv = torch.cat([sd[p + "q_proj.weight"], sd[p + "k_proj.weight"], sd[p + "v_proj.weight"]], 0)
    h = sd[p + "q_proj.weight"].shape[0]
    for i, n in enumerate(["q_proj", "k_proj", "v_proj"]):
        sd[p + n + ".weight"] = qkv[i * h:(i + 1) * h]
    sd[p + "out_proj.weight"] = sd[p + "out_proj.weight"].t().contiguous().t()
    assert not sd[p + "out_proj.weight"].is_contiguous()


def make(ref, out):
    torch.manual_seed(0)
    src = lambda c: os.path.join(ref, c)  # noqa: E731
    dst = lambda c: os.path.join(out, c)  # noqa: E731

    sd = read_safetensors(os.path.join(src("base_like"), "model.safetensors"))
    views(sd, "wav2vec2.")
    copy_json(src("base_like"), dst("f32"))
    torch.save(sd, os.path.join(dst("f32"), "pytorch_model.bin"))

    copy_json(src("fp16"), dst("fp16"))
    sd = read_safetensors(os.path.join(src("fp16"), "model.safetensors"))
    assert all(t.dtype == torch.float16 for t in sd.values())
    torch.save(sd, os.path.join(dst("fp16"), "pytorch_model.bin"))

    copy_json(src("large_like"), dst("sharded"))
    shards = shard(read_safetensors(os.path.join(src("large_like"), "model.safetensors")), 2)
    fmt = "pytorch_model-{:05d}-of-{:05d}.bin"
    for i, s in enumerate(shards):
        torch.save(s, os.path.join(dst("sharded"), fmt.format(i + 1, len(shards))))
    write_index(os.path.join(dst("sharded"), "pytorch_model.bin.index.json"), shards, fmt)

    copy_json(src("odd"), dst("legacy"))
    sd = read_safetensors(os.path.join(src("odd"), "model.safetensors"))
    torch.save(sd, os.path.join(dst("legacy"), "pytorch_model.bin"), _use_new_zipfile_serialization=False)

    copy_json(src("bf16"), dst("st-sharded"))
    shards = shard(read_safetensors(os.path.join(src("bf16"), "model.safetensors")), 2)
    fmt = "model-{:05d}-of-{:05d}.safetensors"
    for i, s in enumerate(shards):
        write_safetensors(os.path.join(dst("st-sharded"), fmt.format(i + 1, len(shards))), s)
    write_index(os.path.join(dst("st-sharded"), "model.safetensors.index.json"), shards, fmt)

    copy_json(src("utf8"), dst("multilang"))
    with open(os.path.join(src("utf8"), "vocab.json"), encoding="utf-8") as f:
        vi = json.load(f, object_pairs_hook=OrderedDict)
    with open(os.path.join(src("base_like"), "vocab.json"), encoding="utf-8") as f:
        en = json.load(f, object_pairs_hook=OrderedDict)
    with open(os.path.join(dst("multilang"), "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(OrderedDict([("en", en), ("vi", vi)]), f, ensure_ascii=False)
    torch.save(read_safetensors(os.path.join(src("utf8"), "model.safetensors")),
               os.path.join(dst("multilang"), "pytorch_model.bin"))


def make_base_random(ref, out):
    """wav2vec2-base (94.4 M parameters) with random weights, as pytorch_model.bin and as
    model.safetensors (two sibling directories), for load-time and RSS comparisons."""
    torch.manual_seed(0)
    H, I, L, V, C = 768, 3072, 12, 32, 512
    sd = OrderedDict()
    p = "wav2vec2."
    kernels = [10, 3, 3, 3, 3, 2, 2]
    for i, k in enumerate(kernels):
        sd[p + f"feature_extractor.conv_layers.{i}.conv.weight"] = torch.randn(C, 1 if i == 0 else C, k) * 0.02
    sd[p + "feature_extractor.conv_layers.0.layer_norm.weight"] = torch.ones(C)
    sd[p + "feature_extractor.conv_layers.0.layer_norm.bias"] = torch.zeros(C)
    sd[p + "feature_projection.layer_norm.weight"] = torch.ones(C)
    sd[p + "feature_projection.layer_norm.bias"] = torch.zeros(C)
    sd[p + "feature_projection.projection.weight"] = torch.randn(H, C) * 0.02
    sd[p + "feature_projection.projection.bias"] = torch.zeros(H)
    sd[p + "encoder.pos_conv_embed.conv.weight_g"] = torch.ones(1, 1, 128)
    sd[p + "encoder.pos_conv_embed.conv.weight_v"] = torch.randn(H, H // 16, 128) * 0.02
    sd[p + "encoder.pos_conv_embed.conv.bias"] = torch.zeros(H)
    sd[p + "encoder.layer_norm.weight"] = torch.ones(H)
    sd[p + "encoder.layer_norm.bias"] = torch.zeros(H)
    for l in range(L):
        b = p + f"encoder.layers.{l}."
        for n in ["q_proj", "k_proj", "v_proj", "out_proj"]:
            sd[b + f"attention.{n}.weight"] = torch.randn(H, H) * 0.02
            sd[b + f"attention.{n}.bias"] = torch.zeros(H)
        for n in ["layer_norm", "final_layer_norm"]:
            sd[b + f"{n}.weight"] = torch.ones(H)
            sd[b + f"{n}.bias"] = torch.zeros(H)
        sd[b + "feed_forward.intermediate_dense.weight"] = torch.randn(I, H) * 0.02
        sd[b + "feed_forward.intermediate_dense.bias"] = torch.zeros(I)
        sd[b + "feed_forward.output_dense.weight"] = torch.randn(H, I) * 0.02
        sd[b + "feed_forward.output_dense.bias"] = torch.zeros(H)
    sd["lm_head.weight"] = torch.randn(V, H) * 0.02
    sd["lm_head.bias"] = torch.zeros(V)
    cfg = {"architectures": ["Wav2Vec2ForCTC"], "model_type": "wav2vec2", "vocab_size": V, "hidden_size": H,
           "num_hidden_layers": L, "num_attention_heads": 12, "intermediate_size": I, "conv_bias": False,
           "feat_extract_norm": "group", "do_stable_layer_norm": False}
    for sub in ["bin", "safetensors"]:
        d = os.path.join(out, sub)
        copy_json(os.path.join(ref, "base_like"), d)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
    torch.save(sd, os.path.join(out, "bin", "pytorch_model.bin"))
    write_safetensors(os.path.join(out, "safetensors", "model.safetensors"), sd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True, help="tests/data/ref")
    ap.add_argument("--out", required=True)
    ap.add_argument("--base-random", action="store_true", help="write a wav2vec2-base sized pair instead")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.base_random:
        make_base_random(a.ref, a.out)
    else:
        make(a.ref, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
