"""Wav2Vec2CTCTokenizer decoding over the library's vocabulary, and the feature extractor's settings.

The token strings come from the loaded model (mp_model_token), so they are the engine's. Which of them
are the pad (CTC blank), word delimiter and special tokens, and do_lower_case, are read from the model
directory's tokenizer files with the precedence the library's loader uses: Wav2Vec2CTCTokenizer's
defaults, then tokenizer_config.json, then special_tokens_map.json; a pad token missing from the
vocabulary falls back to config.json pad_token_id.

Decoding (greedy CTC, as the HuggingFace ASR pipeline and the engine do): group consecutive equal ids,
drop the pad token, the word delimiter becomes a space, join, strip, lower() when do_lower_case. Repeats
collapse before blanks are dropped, so "l <pad> l" is "ll". With skip_special_tokens=True the special
tokens (pad, unk, bos, eos) are removed before grouping, as Wav2Vec2CTCTokenizer does.
"""
import json
import os

DEFAULTS = {"pad_token": "<pad>", "word_delimiter_token": "|", "unk_token": "<unk>", "bos_token": "<s>",
            "eos_token": "</s>"}

# PreTrainedTokenizerBase.clean_up_tokenization: spaces before punctuation and English contractions.
_CLEANUP = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def _token_value(v):
    if isinstance(v, dict):
        v = v.get("content")
    return v if isinstance(v, str) else None


def read_special_tokens(model_dir):
    """(special token strings by role, do_lower_case, config pad_token_id) of a model directory."""
    special = dict(DEFAULTS)
    lower = False
    pad_id_cfg = 0
    if not model_dir:
        return special, lower, pad_id_cfg
    tc = _read_json(os.path.join(model_dir, "tokenizer_config.json")) or {}
    for k in DEFAULTS:
        v = _token_value(tc.get(k))
        if v is not None:
            special[k] = v
    lower = bool(tc.get("do_lower_case", False))
    sp = _read_json(os.path.join(model_dir, "special_tokens_map.json")) or {}
    for k in DEFAULTS:
        v = _token_value(sp.get(k))
        if v is not None:
            special[k] = v
    cfg = _read_json(os.path.join(model_dir, "config.json")) or {}
    if isinstance(cfg.get("pad_token_id"), int):
        pad_id_cfg = cfg["pad_token_id"]
    return special, lower, pad_id_cfg


def read_feature_extractor(model_dir, sample_rate):
    """preprocessor_config.json settings (the loader's defaults when the file is absent)."""
    pre = (_read_json(os.path.join(model_dir, "preprocessor_config.json")) if model_dir else None) or {}
    return {
        "do_normalize": bool(pre.get("do_normalize", True)),
        "sampling_rate": int(pre.get("sampling_rate", sample_rate or 16000)),
        "padding_value": float(pre.get("padding_value", 0.0)),
        "return_attention_mask": bool(pre.get("return_attention_mask", False)),
        "feature_size": int(pre.get("feature_size", 1)),
    }


def _flat_ids(seq):
    """A 1-D id sequence as a list of ints (numpy, torch, lists)."""
    if hasattr(seq, "tolist"):
        seq = seq.tolist()
    if isinstance(seq, int):
        return [seq]
    return [int(i) for i in seq]


class Tokenizer:
    """The CTC tokenizer half of the processor: decode(), batch_decode(), the vocabulary."""

    def __init__(self, tokens, model_dir):
        self.tokens = list(tokens)
        special, self.do_lower_case, pad_id_cfg = read_special_tokens(model_dir)
        index = {}
        for i, t in enumerate(self.tokens):
            index.setdefault(t, i)
        self.vocab = index
        self.pad_token = special["pad_token"]
        self.word_delimiter_token = special["word_delimiter_token"]
        self.unk_token, self.bos_token, self.eos_token = (special["unk_token"], special["bos_token"],
                                                          special["eos_token"])
        pad = index.get(self.pad_token)
        if pad is None and 0 <= pad_id_cfg < len(self.tokens):
            pad = pad_id_cfg
        self.pad_token_id = pad
        self.word_delimiter_token_id = index.get(self.word_delimiter_token)
        self.all_special_ids = sorted({i for i in (pad, index.get(self.unk_token), index.get(self.bos_token),
                                                   index.get(self.eos_token)) if i is not None})

    def __len__(self):
        return len(self.tokens)

    def get_vocab(self):
        return dict(self.vocab)

    def convert_ids_to_tokens(self, ids, skip_special_tokens=False):
        ids = _flat_ids(ids)
        special = set(self.all_special_ids) if skip_special_tokens else ()
        return [self.tokens[i] if 0 <= i < len(self.tokens) else "" for i in ids if i not in special]

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=False):
        """One id sequence to text (Wav2Vec2CTCTokenizer semantics, see the module doc)."""
        ids = _flat_ids(ids)
        n = len(self.tokens)
        special = set(self.all_special_ids) if skip_special_tokens else set()
        out = []
        prev = None
        for i in ids:
            if i in special:
                continue
            if i == prev:
                continue  # a run of one id is one character
            prev = i
            if i == self.pad_token_id:
                continue
            if i == self.word_delimiter_token_id:
                out.append(" ")
            elif 0 <= i < n:
                out.append(self.tokens[i])
            else:
                raise ValueError(f"token id {i} is outside the vocabulary [0, {n})")
        text = "".join(out).strip()
        if self.do_lower_case:
            text = text.lower()
        if clean_up_tokenization_spaces:
            for a, b in _CLEANUP:
                text = text.replace(a, b)
        return text

    def batch_decode(self, sequences, skip_special_tokens=False, clean_up_tokenization_spaces=False):
        """A batch of id sequences ([batch, frames]: numpy, torch, lists) to a list of texts."""
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        if isinstance(sequences, int):
            sequences = [[sequences]]
        elif sequences and isinstance(sequences[0], int):
            sequences = [sequences]  # one sequence given where a batch was expected
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in sequences]
