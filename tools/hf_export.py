#!/usr/bin/python3
"""hf_export.py - write a torchaudio wav2vec2 model as a HuggingFace Wav2Vec2ForCTC directory.

Used by tools/make_reference.py (random-weight parity fixtures) and tools/train/ (the embedded
model). Runs with Debian's /usr/bin/python3 + python3-torch 1.13 + python3-torchaudio 0.13.1;
no `transformers` and no `safetensors` package needed: the safetensors writer/reader is here.

Typical use:

    import hf_export as hx
    cfg = hx.hf_config(conv_dim=[32] * 7, hidden_size=64, num_hidden_layers=2,
                       num_attention_heads=4, intermediate_size=128, vocab_size=len(vocab))
    model = hx.build_model(cfg)            # torchaudio Wav2Vec2Model with HF semantics
    ... train or randomize model ...
    hx.export_hf_dir(model, cfg, vocab, "models/digits", dtype="F32")

Semantics (HuggingFace transformers' modeling_wav2vec2.py, which the C engine follows):
  - feature-extractor convs and the positional conv use `feat_extract_activation`;
  - the feed-forward uses `hidden_act`;
  - conv-layer GroupNorm/LayerNorm use eps 1e-5 (torch default); the feature projection's
    LayerNorm and every transformer LayerNorm use `layer_norm_eps`.
torchaudio hard-codes GELU and eps 1e-5 everywhere, so build_model() patches those modules.

HF <-> torchaudio tensor names differ by prefix only (torchaudio utils/import_huggingface.py):
  wav2vec2.feature_extractor.  <-> feature_extractor.
  wav2vec2.feature_projection. <-> encoder.feature_projection.
  wav2vec2.encoder.            <-> encoder.transformer.
  lm_head.                     <-> aux.
"""

import json
import math
import os
import struct
import types
from collections import OrderedDict

import numpy as np
import torch
import torchaudio

__all__ = [
    "ACTIVATIONS", "hf_config", "torchaudio_kwargs", "build_model", "hf_state_dict",
    "round_params", "save_safetensors", "load_safetensors", "write_tokenizer_files",
    "write_preprocessor_config", "export_hf_dir",
]

# ------------------------------------------------------------------------------------------------
# Activations, as HF's ACT2FN defines them (transformers/activations.py).


def _gelu_new(x):
    # NewGELUActivation: tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTIVATIONS = {
    "gelu": torch.nn.functional.gelu,  # exact erf form
    "gelu_new": _gelu_new,
    "relu": torch.nn.functional.relu,
    "swish": torch.nn.functional.silu,
    "silu": torch.nn.functional.silu,
}

# ------------------------------------------------------------------------------------------------
# config.json


def hf_config(**overrides):
    """Return a HF Wav2Vec2Config dict (config.json) with wav2vec2-base-960h defaults, updated
    with `overrides`. num_feat_extract_layers follows conv_dim. Keys are HF's field names."""
    cfg = OrderedDict(
        architectures=["Wav2Vec2ForCTC"],
        model_type="wav2vec2",
        activation_dropout=0.0,
        apply_spec_augment=True,
        attention_dropout=0.0,
        bos_token_id=1,
        conv_bias=False,
        conv_dim=[512] * 7,
        conv_kernel=[10, 3, 3, 3, 3, 2, 2],
        conv_stride=[5, 2, 2, 2, 2, 2, 2],
        ctc_loss_reduction="sum",
        ctc_zero_infinity=False,
        do_stable_layer_norm=False,
        eos_token_id=2,
        feat_extract_activation="gelu",
        feat_extract_dropout=0.0,
        feat_extract_norm="group",
        feat_proj_dropout=0.0,
        final_dropout=0.0,
        hidden_act="gelu",
        hidden_dropout=0.0,
        hidden_size=768,
        initializer_range=0.02,
        intermediate_size=3072,
        layer_norm_eps=1e-5,
        layerdrop=0.0,
        mask_feature_length=10,
        mask_feature_prob=0.0,
        mask_time_length=10,
        mask_time_prob=0.05,
        num_attention_heads=12,
        num_conv_pos_embedding_groups=16,
        num_conv_pos_embeddings=128,
        num_feat_extract_layers=7,
        num_hidden_layers=12,
        pad_token_id=0,
        torch_dtype="float32",
        vocab_size=32,
    )
    for k, v in overrides.items():
        cfg[k] = v
    cfg["num_feat_extract_layers"] = len(cfg["conv_dim"])
    if not (len(cfg["conv_dim"]) == len(cfg["conv_kernel"]) == len(cfg["conv_stride"])):
        raise ValueError("conv_dim, conv_kernel and conv_stride must have the same length")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise ValueError("hidden_size must be a multiple of num_attention_heads")
    if cfg["hidden_size"] % cfg["num_conv_pos_embedding_groups"]:
        raise ValueError("hidden_size must be a multiple of num_conv_pos_embedding_groups")
    for key in ("hidden_act", "feat_extract_activation"):
        if cfg[key] not in ACTIVATIONS:
            raise ValueError("%s %r not supported" % (key, cfg[key]))
    return cfg


def torchaudio_kwargs(cfg):
    """Arguments for torchaudio.models.wav2vec2_model() from a HF config dict
    (the mapping of torchaudio's utils/import_huggingface.py _get_config)."""
    return dict(
        extractor_mode=cfg["feat_extract_norm"] + "_norm",
        extractor_conv_layer_config=list(zip(cfg["conv_dim"], cfg["conv_kernel"], cfg["conv_stride"])),
        extractor_conv_bias=bool(cfg["conv_bias"]),
        encoder_embed_dim=cfg["hidden_size"],
        encoder_projection_dropout=cfg.get("feat_proj_dropout", 0.0),
        encoder_pos_conv_kernel=cfg["num_conv_pos_embeddings"],
        encoder_pos_conv_groups=cfg["num_conv_pos_embedding_groups"],
        encoder_num_layers=cfg["num_hidden_layers"],
        encoder_num_heads=cfg["num_attention_heads"],
        encoder_attention_dropout=cfg.get("attention_dropout", 0.0),
        encoder_ff_interm_features=cfg["intermediate_size"],
        encoder_ff_interm_dropout=cfg.get("activation_dropout", 0.0),
        encoder_dropout=cfg.get("hidden_dropout", 0.0),
        encoder_layer_norm_first=bool(cfg["do_stable_layer_norm"]),
        encoder_layer_drop=cfg.get("layerdrop", 0.0),
        aux_num_out=cfg["vocab_size"],
    )


# ------------------------------------------------------------------------------------------------
# The model


def _conv_block_forward(act):
    # torchaudio ConvLayerBlock.forward with the activation made configurable.
    def forward(self, x, length):
        x = self.conv(x)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        x = act(x)
        if length is not None:
            length = torch.div(length - self.kernel_size, self.stride, rounding_mode="floor") + 1
            length = torch.max(torch.zeros_like(length), length)
        return x, length
    return forward


def _pos_conv_forward(act):
    # torchaudio ConvolutionalPositionalEmbedding.forward; x [batch, frame, feature].
    def forward(self, x):
        x = x.transpose(-2, -1)
        x = self.conv(x)
        if self.num_remove > 0:
            x = x[..., : -self.num_remove]  # even kernel: drop the last frame (HF SamePadLayer)
        x = act(x)
        return x.transpose(-2, -1)
    return forward


def _feed_forward(act):
    # torchaudio FeedForward.forward with HF's hidden_act.
    def forward(self, x):
        x = self.intermediate_dense(x)
        x = act(x)
        x = self.intermediate_dropout(x)
        x = self.output_dense(x)
        return self.output_dropout(x)
    return forward


def build_model(cfg):
    """A torchaudio Wav2Vec2Model for the HF config dict `cfg`, patched to HF semantics
    (activations and layer_norm_eps; see the module comment). Trainable; returned in train mode
    as torch builds it; call .eval() for inference."""
    model = torchaudio.models.wav2vec2_model(**torchaudio_kwargs(cfg))
    feat_act = ACTIVATIONS[cfg["feat_extract_activation"]]
    hidden_act = ACTIVATIONS[cfg["hidden_act"]]
    eps = float(cfg["layer_norm_eps"])
    for block in model.feature_extractor.conv_layers:
        block.forward = types.MethodType(_conv_block_forward(feat_act), block)
    enc = model.encoder
    enc.feature_projection.layer_norm.eps = eps
    tr = enc.transformer
    tr.pos_conv_embed.forward = types.MethodType(_pos_conv_forward(feat_act), tr.pos_conv_embed)
    tr.layer_norm.eps = eps
    for layer in tr.layers:
        layer.layer_norm.eps = eps
        layer.final_layer_norm.eps = eps
        layer.feed_forward.forward = types.MethodType(_feed_forward(hidden_act), layer.feed_forward)
    return model


_PREFIXES = [
    ("feature_extractor.", "{base}feature_extractor."),
    ("encoder.feature_projection.", "{base}feature_projection."),
    ("encoder.transformer.", "{base}encoder."),
    ("aux.", "lm_head."),
]

# HF architecture -> (model_type, base-model prefix of the tensor names). HubertForCTC has the
# same tensors as Wav2Vec2ForCTC under "hubert." (HubertConfig feat_proj_layer_norm true, the
# default, keeps the feature projection's LayerNorm).
ARCHS = {"Wav2Vec2ForCTC": ("wav2vec2", "wav2vec2."), "HubertForCTC": ("hubert", "hubert.")}


def hf_state_dict(model, pos_conv_naming="weight_norm", base_prefix="wav2vec2."):
    """OrderedDict HF tensor name -> fp32 CPU tensor for a torchaudio Wav2Vec2Model.
    base_prefix: "wav2vec2." (Wav2Vec2ForCTC) or "hubert." (HubertForCTC).

    pos_conv_naming: "weight_norm" stores pos_conv_embed.conv.weight_g / weight_v (older
    checkpoints, torch.nn.utils.weight_norm); "parametrizations" stores
    pos_conv_embed.conv.parametrizations.weight.original0 / original1 (same tensors, g then v,
    as torch.nn.utils.parametrizations.weight_norm names them)."""
    if pos_conv_naming not in ("weight_norm", "parametrizations"):
        raise ValueError("pos_conv_naming must be 'weight_norm' or 'parametrizations'")
    out = OrderedDict()
    for name, t in model.state_dict().items():
        for ta, hf in _PREFIXES:
            if name.startswith(ta):
                hf_name = hf.format(base=base_prefix) + name[len(ta):]
                break
        else:
            raise ValueError("unexpected torchaudio tensor %s" % name)
        if pos_conv_naming == "parametrizations":
            hf_name = hf_name.replace("pos_conv_embed.conv.weight_g",
                                      "pos_conv_embed.conv.parametrizations.weight.original0")
            hf_name = hf_name.replace("pos_conv_embed.conv.weight_v",
                                      "pos_conv_embed.conv.parametrizations.weight.original1")
        out[hf_name] = t.detach().to(torch.float32).cpu().contiguous()
    return out


def round_params(model, dtype):
    """Round every parameter and buffer of `model` in place to `dtype` ("F16" or "BF16") and back
    to fp32, so that torch computes in fp32 with exactly the weights a half-precision checkpoint
    stores (the engine upcasts at load)."""
    tdt = {"F16": torch.float16, "BF16": torch.bfloat16}[dtype]
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(tdt).to(torch.float32))


# ------------------------------------------------------------------------------------------------
# safetensors (format: https://github.com/huggingface/safetensors README, "Format"):
#   8 bytes: N, little-endian u64 = header size; N bytes: JSON
#   {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {str: str}}
#   padded with spaces (we pad to a multiple of 8 so the data is aligned); then the byte buffer,
#   little-endian, row-major; offsets are relative to the start of the buffer.

_ST_DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2),
              "F64": (torch.float64, 8), "I64": (torch.int64, 8), "I32": (torch.int32, 4)}


def _tensor_bytes(t, dtype):
    tdt, _ = _ST_DTYPES[dtype]
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(t))
    t = t.detach().cpu().to(tdt).contiguous()
    if dtype == "BF16":
        t = t.view(torch.int16)  # numpy has no bfloat16: move the raw 16-bit patterns
    a = t.numpy()
    return a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes(), list(t.shape)


def save_safetensors(path, tensors, dtype="F32", metadata=None, dtypes=None):
    """Write `tensors` (mapping name -> torch.Tensor or np.ndarray) to `path` in safetensors format.

    dtype: storage type for every tensor ("F32", "F16", "BF16"); dtypes: optional per-name override
    (e.g. a "mixed" file). metadata: optional {str: str} stored as "__metadata__"
    (HF writes {"format": "pt"}). Tensors are laid out in the given order."""
    header = OrderedDict()
    blobs = []
    offset = 0
    for name, t in tensors.items():
        dt = (dtypes or {}).get(name, dtype)
        data, shape = _tensor_bytes(t, dt)
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    meta = {"format": "pt"} if metadata is None else dict(metadata)
    if meta:
        header["__metadata__"] = {str(k): str(v) for k, v in meta.items()}
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path):
    """Read a safetensors file: returns (OrderedDict name -> float32 np.ndarray, metadata dict).
    F16 and BF16 are upcast to float32. For checks; strict about offsets."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=OrderedDict)
    base = 8 + n
    meta = header.pop("__metadata__", {})
    out = OrderedDict()
    for name, info in header.items():
        b, e = info["data_offsets"]
        if not (0 <= b <= e <= len(raw) - base):
            raise ValueError("%s: tensor %s: data_offsets outside the file" % (path, name))
        buf = raw[base + b:base + e]
        dt = info["dtype"]
        if dt == "BF16":
            u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            a = u.view(np.float32)
        elif dt == "F16":
            a = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        elif dt == "F32":
            a = np.frombuffer(buf, dtype="<f4").astype(np.float32)
        else:
            raise ValueError("%s: tensor %s: dtype %s not handled" % (path, name, dt))
        out[name] = a.reshape(info["shape"])
    return out, meta


# ------------------------------------------------------------------------------------------------
# Tokenizer and preprocessor files


def _vocab_dict(vocab):
    if isinstance(vocab, dict):
        d = OrderedDict(sorted(vocab.items(), key=lambda kv: kv[1]))
        if sorted(d.values()) != list(range(len(d))):
            raise ValueError("vocab ids must be 0..n-1")
        return d
    d = OrderedDict((tok, i) for i, tok in enumerate(vocab))
    if len(d) != len(vocab):
        raise ValueError("duplicate token in vocab")
    return d


def write_tokenizer_files(out_dir, vocab, pad="<pad>", bos="<s>", eos="</s>", unk="<unk>",
                          word_delimiter="|", do_lower_case=False):
    """vocab.json (UTF-8, not \\u-escaped), special_tokens_map.json, tokenizer_config.json as
    Wav2Vec2CTCTokenizer.save_pretrained() writes them. vocab: list of tokens in id order, or
    {token: id}."""
    d = _vocab_dict(vocab)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(d, f, ensure_ascii=False)
    special = OrderedDict(bos_token=bos, eos_token=eos, unk_token=unk, pad_token=pad)
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump(special, f, ensure_ascii=False, indent=2)
    tok = OrderedDict(special)
    tok.update(do_lower_case=do_lower_case, word_delimiter_token=word_delimiter,
               replace_word_delimiter_char=" ", tokenizer_class="Wav2Vec2CTCTokenizer")
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=2)


def write_preprocessor_config(out_dir, do_normalize=True, sampling_rate=16000,
                              return_attention_mask=False):
    """preprocessor_config.json for Wav2Vec2FeatureExtractor."""
    pre = OrderedDict(do_normalize=bool(do_normalize), feature_extractor_type="Wav2Vec2FeatureExtractor",
                      feature_size=1, padding_side="right", padding_value=0.0,
                      return_attention_mask=bool(return_attention_mask), sampling_rate=sampling_rate)
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w", encoding="utf-8") as f:
        json.dump(pre, f, indent=2)


def export_hf_dir(model, cfg, vocab, out_dir, dtype="F32", pos_conv_naming="weight_norm",
                  do_normalize=True, masked_spec_embed=False, metadata=None, **tokenizer_kw):
    """Write `model` (torchaudio Wav2Vec2Model with aux head) as a HF Wav2Vec2ForCTC directory:
    config.json, preprocessor_config.json, vocab.json, special_tokens_map.json,
    tokenizer_config.json, model.safetensors.

    cfg: HF config dict (hf_config()); vocab_size is checked against vocab and the head.
    dtype: "F32", "F16" or "BF16" storage (values are rounded; see round_params() to make the
    torch model compute with the stored values). pos_conv_naming: see hf_state_dict().
    cfg["architectures"][0] picks the tensor prefix ("Wav2Vec2ForCTC" or "HubertForCTC", see ARCHS).
    masked_spec_embed: also store <prefix>masked_spec_embed [hidden] (training-only tensor that
    real checkpoints carry when mask_time_prob > 0; loaders must accept and ignore it).
    tokenizer_kw: passed to write_tokenizer_files() (pad, unk, word_delimiter, do_lower_case...)."""
    d = _vocab_dict(vocab)
    if len(d) != cfg["vocab_size"]:
        raise ValueError("vocab has %d tokens, config vocab_size %d" % (len(d), cfg["vocab_size"]))
    os.makedirs(out_dir, exist_ok=True)
    cfg = OrderedDict(cfg)
    cfg["torch_dtype"] = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype]
    pad = tokenizer_kw.get("pad", "<pad>")
    if pad in d:
        cfg["pad_token_id"] = d[pad]
    arch = cfg["architectures"][0]
    if arch not in ARCHS:
        raise ValueError("architecture %r not supported (have %s)" % (arch, ", ".join(ARCHS)))
    cfg["model_type"], base = ARCHS[arch]
    sd = hf_state_dict(model, pos_conv_naming, base)
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2)
    write_preprocessor_config(out_dir, do_normalize=do_normalize)
    write_tokenizer_files(out_dir, d, **tokenizer_kw)
    if sd["lm_head.weight"].shape[0] != len(d):
        raise ValueError("lm_head has %d rows, vocab %d" % (sd["lm_head.weight"].shape[0], len(d)))
    if masked_spec_embed:
        g = torch.Generator().manual_seed(0)
        sd[base + "masked_spec_embed"] = torch.rand(cfg["hidden_size"], generator=g)
    save_safetensors(os.path.join(out_dir, "model.safetensors"), sd, dtype=dtype, metadata=metadata)
    return out_dir
