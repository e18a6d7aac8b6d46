"""The feature-extractor half of the processor (Wav2Vec2FeatureExtractor semantics) and the
BatchFeature / model output containers.

Normalization (do_normalize): (x - mean) / sqrt(var + 1e-7), population variance, per utterance; with
padding and an attention mask over the real samples only (padding then set to padding_value), without a
mask over the padded row, as HuggingFace does. Sums run in float64 like the engine's, then float32.
"""
import array
import math

from . import _samples
from ._samples import np


class BatchFeature(dict):
    """A dict whose keys are also attributes (inputs["input_values"] is inputs.input_values)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device):
        """Tensors stay where they are: the engine runs on the CPU. Returns self, as HF's does."""
        if str(device) not in ("cpu", "cpu:0"):
            raise ValueError(f"modelpool runs on the CPU; cannot move inputs to {device!r}")
        return self


class ModelOutput(dict):
    """Wav2Vec2ForCTC's output: .logits (also ["logits"] and [0])."""

    def __init__(self, logits):
        super().__init__(logits=logits)

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, k):
        if isinstance(k, int):
            return list(self.values())[k]
        return super().__getitem__(k)

    def to_tuple(self):
        return tuple(self.values())


class Logits:
    """[batch, frames, vocab] float32 logits when numpy is absent: .shape, .argmax(-1), .tolist(), [i]."""

    def __init__(self, rows, n_frames, vocab):
        self._rows = rows  # one array('f') of n_frames * vocab per batch item
        self.shape = (len(rows), n_frames, vocab)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, b):
        _, t, v = self.shape
        r = self._rows[b]
        return [list(r[i * v:(i + 1) * v]) for i in range(t)]

    def tolist(self):
        return [self[b] for b in range(len(self))]

    def argmax(self, axis=-1, dim=None):
        if (dim if dim is not None else axis) not in (-1, 2):
            raise ValueError("Logits.argmax: only over the last (vocabulary) axis")
        _, t, v = self.shape
        out = []
        for r in self._rows:
            ids = []
            for i in range(t):
                row = r[i * v:(i + 1) * v]
                ids.append(max(range(v), key=row.__getitem__))  # first maximum on ties, like numpy
            out.append(ids)
        return out


def _moments_np(x):
    """float64 mean and population variance of float32 samples, two passes as the engine computes
    them, through 64k-sample slices so no float64 copy of the whole input is made."""
    n = len(x)
    mean = float(np.add.reduce(x, dtype=np.float64)) / n
    sq = 0.0
    d = np.empty(8192, dtype=np.float64)  # 64 KiB slices: below malloc's mmap threshold, reused
    for i in range(0, n, 8192):
        k = min(8192, n - i)
        np.subtract(x[i:i + k], mean, out=d[:k], dtype=np.float64)
        sq += float(np.dot(d[:k], d[:k]))
    return mean, sq / n


def _normalize_np(x, length):
    """(x - mean) * inv in float32 with mean, inv = 1 / sqrt(var + 1e-7) over x[:length]: the values
    the engine itself feeds its first convolution. A new array; x is not written."""
    mean, var = _moments_np(x[:length]) if length else (0.0, 0.0)
    out = _samples.empty_f32(len(x))
    np.subtract(x, np.float32(mean), out=out, dtype=np.float32)
    out *= np.float32(1.0 / math.sqrt(var + 1e-7))
    return out


def _normalize_list(x, length):
    if length:
        mean = math.fsum(x[:length]) / length
        var = math.fsum((v - mean) ** 2 for v in x[:length]) / length
    else:
        mean, var = 0.0, 0.0
    inv = 1.0 / math.sqrt(var + 1e-7)
    return array.array("f", [(v - mean) * inv for v in x])


class FeatureExtractor:
    """Wav2Vec2FeatureExtractor over the model directory's preprocessor_config.json."""

    model_input_names = ["input_values", "attention_mask"]

    def __init__(self, settings, resample):
        self.do_normalize = settings["do_normalize"]
        self.sampling_rate = settings["sampling_rate"]
        self.padding_value = settings["padding_value"]
        self.return_attention_mask = settings["return_attention_mask"]
        self.feature_size = settings["feature_size"]
        self._resample = resample  # (Samples, from_rate, to_rate) -> Samples

    def _rows(self, speech, sampling_rate):
        batch = speech if _samples.is_sequence_of_rows(speech) else [speech]
        rows = []
        for item in batch:
            s = _samples.as_samples(item)
            if sampling_rate and sampling_rate != self.sampling_rate:
                s = self._resample(s, sampling_rate, self.sampling_rate)
            rows.append(s.numpy() if np is not None else array.array("f", s.tolist()))  # no copy with numpy
        return rows

    def __call__(self, raw_speech, sampling_rate=None, return_tensors=None, padding=False, max_length=None,
                 truncation=False, return_attention_mask=None, **kwargs):
        """HF's Wav2Vec2FeatureExtractor.__call__: returns BatchFeature(input_values [batch, samples]
        [, attention_mask]). A rate other than the model's is resampled (HF would refuse it)."""
        rows = self._rows(raw_speech, sampling_rate)
        lengths = [len(r) for r in rows]
        if truncation and max_length:
            rows = [r[:max_length] for r in rows]
            lengths = [min(n, max_length) for n in lengths]
        pad_to = None
        if padding in (True, "longest"):
            pad_to = max(lengths) if lengths else 0
        elif padding == "max_length":
            if not max_length:
                raise ValueError("padding='max_length' needs max_length")
            pad_to = max_length
        elif padding not in (False, None, "do_not_pad"):
            raise ValueError(f"padding={padding!r}: expected True, False, 'longest' or 'max_length'")
        if pad_to is not None:
            rows = [self._pad(r, pad_to) for r in rows]
        want_mask = self.return_attention_mask if return_attention_mask is None else return_attention_mask
        mask = [[1] * n + [0] * (len(r) - n) for r, n in zip(rows, lengths)] if want_mask else None
        if self.do_normalize:
            # HF: over the real samples when a mask is used with padding, else over the whole row
            use_len = lengths if (mask is not None and pad_to is not None) else [len(r) for r in rows]
            norm = _normalize_np if np is not None else _normalize_list
            rows = [self._refill(norm(r, n), n) for r, n in zip(rows, use_len)]
        elif np is not None:
            rows = [np.array(r, dtype=np.float32) for r in rows]  # never hand out the caller's array
        out = BatchFeature(input_values=rows)
        if mask is not None:
            out["attention_mask"] = mask
        return _as_tensors(out, return_tensors)

    def _pad(self, r, n):
        if len(r) >= n:
            return r
        if np is not None:
            return np.concatenate([r, np.full(n - len(r), self.padding_value, dtype=np.float32)])
        return r + array.array("f", [self.padding_value] * (n - len(r)))

    def _refill(self, r, n):
        if n < len(r):
            r[n:] = np.float32(self.padding_value) if np is not None else array.array(
                "f", [self.padding_value] * (len(r) - n))
        return r


def _as_tensors(feat, return_tensors):
    if return_tensors is None:
        return feat
    if return_tensors not in ("np", "pt"):
        raise ValueError(f"return_tensors={return_tensors!r}: expected 'np', 'pt' or None")
    if return_tensors == "pt":
        try:
            import torch
        except ImportError:
            raise ImportError("return_tensors='pt' needs torch; use return_tensors='np'") from None
    if np is None:
        if return_tensors == "pt":
            raise ImportError("return_tensors='pt' needs numpy as well as torch")
        return feat  # lists of array('f') rows: the model accepts them
    for k, v in list(feat.items()):
        if len({len(r) for r in v}) > 1:
            raise ValueError("Unable to create a tensor from rows of different lengths: pass padding=True")
        dtype = np.float32 if k == "input_values" else np.int32
        if len(v) == 1:  # one utterance: a [1, n] view, no copy
            arr = np.asarray(v[0], dtype=dtype)[None, :]
        else:
            arr = np.stack([np.asarray(r, dtype=dtype) for r in v]) if v else np.zeros((0, 0), dtype=dtype)
        feat[k] = torch.from_numpy(arr) if return_tensors == "pt" else arr
    return feat
