#!/usr/bin/python3
"""Write a torchaudio wav2vec2 model as a HuggingFace Wav2Vec2ForCTC directory.

Files: config.json, preprocessor_config.json, vocab.json, tokenizer_config.json,
special_tokens_map.json, model.safetensors, lexicon.txt. Tensor names follow HF
(the inverse of torchaudio's utils/import_huggingface.py prefix map).
The safetensors reading and writing is tools/hf_export.py's (shared with the parity fixtures).

  /usr/bin/python3 tools/train/export_hf.py CHECKPOINT.pt OUT_DIR
"""
import json
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402
import hf_export  # noqa: E402  (tools/hf_export.py)

PREFIX = [("feature_extractor.", "wav2vec2.feature_extractor."),
          ("encoder.feature_projection.", "wav2vec2.feature_projection."),
          ("encoder.transformer.", "wav2vec2.encoder."),
          ("aux.", "lm_head.")]


def hf_name(k):
    for a, b in PREFIX:
        if k.startswith(a):
            return b + k[len(a):]
    raise KeyError(k)


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> torch tensor (float32 or float16), written in name order, atomically."""
    import torch
    names = sorted(tensors)
    dtypes = {n: ("F16" if tensors[n].dtype == torch.float16 else "F32") for n in names}
    hf_export.save_safetensors(path, OrderedDict((n, tensors[n]) for n in names),
                               metadata=metadata or {"format": "pt"}, dtypes=dtypes)


def hf_config(cfg):
    conv = cfg["extractor_conv_layer_config"]
    return {
        "architectures": ["Wav2Vec2ForCTC"],
        "model_type": "wav2vec2",
        "activation_dropout": cfg["encoder_ff_interm_dropout"],
        "attention_dropout": cfg["encoder_attention_dropout"],
        "bos_token_id": 1,
        "conv_bias": cfg["extractor_conv_bias"],
        "conv_dim": [c[0] for c in conv],
        "conv_kernel": [c[1] for c in conv],
        "conv_stride": [c[2] for c in conv],
        "ctc_loss_reduction": "mean",
        "ctc_zero_infinity": True,
        "do_stable_layer_norm": cfg["encoder_layer_norm_first"],
        "eos_token_id": 2,
        "feat_extract_activation": "gelu",
        "feat_extract_dropout": 0.0,
        "feat_extract_norm": cfg["extractor_mode"].replace("_norm", ""),
        "feat_proj_dropout": cfg["encoder_projection_dropout"],
        "final_dropout": 0.0,
        "hidden_act": "gelu",
        "hidden_dropout": cfg["encoder_dropout"],
        "hidden_size": cfg["encoder_embed_dim"],
        "initializer_range": 0.02,
        "intermediate_size": cfg["encoder_ff_interm_features"],
        "layer_norm_eps": 1e-05,
        "layerdrop": cfg["encoder_layer_drop"],
        "mask_time_length": 10,
        "mask_time_prob": 0.05,
        "num_attention_heads": cfg["encoder_num_heads"],
        "num_conv_pos_embedding_groups": cfg["encoder_pos_conv_groups"],
        "num_conv_pos_embeddings": cfg["encoder_pos_conv_kernel"],
        "num_feat_extract_layers": len(conv),
        "num_hidden_layers": cfg["encoder_num_layers"],
        "pad_token_id": 0,
        "torch_dtype": "float32",
        "transformers_version": "4.30.0",
        "vocab_size": cfg["aux_num_out"],
    }


def export(state_dict, cfg, out_dir, fp16=False, extra_meta=None):
    """state_dict: torchaudio Wav2Vec2Model state dict. Writes the HF directory into out_dir."""
    import torch
    os.makedirs(out_dir, exist_ok=True)
    tensors = {}
    for k, v in state_dict.items():
        v = v.float()
        tensors[hf_name(k)] = v.half() if fp16 else v
    meta = {"format": "pt"}
    meta.update(extra_meta or {})
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, meta)

    def wjson(name, obj):
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    wjson("config.json", hf_config(cfg))
    wjson("preprocessor_config.json", {
        "do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
        "padding_side": "right", "padding_value": 0.0, "processor_class": "Wav2Vec2Processor",
        "return_attention_mask": False, "sampling_rate": 16000})
    wjson("vocab.json", {t: i for i, t in enumerate(common.VOCAB)})
    wjson("special_tokens_map.json", {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
                                      "unk_token": "<unk>"})
    wjson("tokenizer_config.json", {
        "bos_token": "<s>", "do_lower_case": False, "eos_token": "</s>", "pad_token": "<pad>",
        "processor_class": "Wav2Vec2Processor", "replace_word_delimiter_char": " ",
        "tokenizer_class": "Wav2Vec2CTCTokenizer", "unk_token": "<unk>", "word_delimiter_token": "|"})
    with open(os.path.join(out_dir, "lexicon.txt"), "w") as f:
        f.write("\n".join(common.LEXICON) + "\n")
    del torch


def read_safetensors(path):
    """Inverse of write_safetensors, for round-trip checks: dict name -> float32 torch tensor."""
    import torch
    arrays, _ = hf_export.load_safetensors(path)
    return {k: torch.from_numpy(v.copy()) for k, v in arrays.items()}


def load_hf_dir(model_dir):
    """Rebuild the torchaudio model from an exported directory (config.json + model.safetensors)."""
    import torchaudio
    from torchaudio.models.wav2vec2.utils import import_huggingface as ih
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)

    class Cfg:
        pass
    o = Cfg()
    for k, v in c.items():
        setattr(o, k, v)
    cfg = ih._get_config(o)
    model = torchaudio.models.wav2vec2_model(**cfg, aux_num_out=c["vocab_size"])
    inv = {b: a for a, b in PREFIX}
    sd = {}
    for k, v in read_safetensors(os.path.join(model_dir, "model.safetensors")).items():
        for b, a in inv.items():
            if k.startswith(b):
                sd[a + k[len(b):]] = v.float()
    model.load_state_dict(sd, strict=True)
    return model.eval()


def main():
    import torch
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ck = torch.load(sys.argv[1], map_location="cpu")
    sd = ck.get("ema") or ck["model"]
    export(sd, ck.get("cfg", common.MODEL_CFG), sys.argv[2])
    m = load_hf_dir(sys.argv[2])
    print("exported %s -> %s (%d params)" % (sys.argv[1], sys.argv[2], sum(p.numel() for p in m.parameters())))


if __name__ == "__main__":
    main()
