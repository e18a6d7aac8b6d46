"""Every accepted sample type gives the same transcript and the same processor output: numpy float32/
float64/int16, torch, array('f'/'d'/'h'), bytes/bytearray/memoryview of 16-bit PCM, lists; wrong types
are refused with a clear TypeError/ValueError."""
import array
import sys

import numpy as np
import pytest

import modelpool
from conftest import DIGITS_GREEDY, SAMPLE


@pytest.fixture(scope="module")
def pcm16():
    speech, _ = modelpool.load_audio(SAMPLE, sr=16000)
    return np.clip(np.round(speech[:40000] * 32768.0), -32768, 32767).astype(np.int16)  # 2.5 s


def variants(pcm):
    f = pcm.astype(np.float32) / 32768.0
    le = pcm.astype("<i2").tobytes()
    out = {
        "numpy int16": pcm,
        "numpy float32": f,
        "numpy float64": f.astype(np.float64),
        "numpy [1, n]": f[None, :],
        "array h": array.array("h", pcm.tolist()),
        "array f": array.array("f", f.tolist()),
        "array d": array.array("d", f.tolist()),
        "bytes": le,
        "bytearray": bytearray(le),
        "memoryview": memoryview(le),
        "list": f.tolist(),
        "tuple": tuple(f.tolist()),
    }
    try:
        import torch
        out["torch"] = torch.from_numpy(f.copy())
    except ImportError:
        pass
    return out


def test_every_type_same_text(digits_pool, pcm16):
    want = digits_pool.transcribe(pcm16.astype(np.float32) / 32768.0)
    assert want.text
    for name, x in variants(pcm16).items():
        assert digits_pool.transcribe(x).text == want.text, name


def test_every_type_same_features(digits_pool, pcm16):
    proc = digits_pool.processor
    want = proc(pcm16.astype(np.float32) / 32768.0, return_tensors="np").input_values
    for name, x in variants(pcm16).items():
        got = proc(x, return_tensors="np").input_values
        assert got.shape == want.shape and float(np.abs(got - want).max()) < 1e-6, name


def test_stream_accepts_types(digits_pool, pcm16):
    texts = set()
    for x in (pcm16, pcm16.astype("<i2").tobytes(), array.array("h", pcm16.tolist())):
        with digits_pool.stream(sample_rate=16000) as s:
            s.feed(x)
            texts.add(s.finish().text)
    assert len(texts) == 1


def test_bad_inputs(digits_pool):
    with pytest.raises(TypeError, match="cannot use"):
        digits_pool.transcribe(object())
    with pytest.raises(TypeError):
        digits_pool.transcribe(np.zeros(100, dtype=np.int32))  # ambiguous scale
    with pytest.raises(TypeError):
        digits_pool.transcribe(array.array("i", [1, 2, 3]))
    with pytest.raises(ValueError, match="even length"):
        digits_pool.transcribe(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="1-D"):
        digits_pool.transcribe(np.zeros((2, 3000), dtype=np.float32))
    with pytest.raises(TypeError):
        digits_pool.transcribe(["a", "b"])
    with pytest.raises(modelpool.InvalidArgumentError):
        digits_pool.transcribe(np.zeros(16000, dtype=np.float32), sample_rate=-5)
    # silence and empty input are fine: no words
    assert digits_pool.transcribe(np.zeros(16000, dtype=np.float32)).text == ""
    assert digits_pool.transcribe([]).text == ""


def test_without_numpy(tmp_path):
    """The design's request runs with numpy unavailable: array('f') rows, Logits.argmax, same text."""
    import subprocess
    code = f"""
import sys
sys.modules["numpy"] = None  # any 'import numpy' now fails
import modelpool
pool = modelpool.ModelPool(pool_size=1, model_dir={DIGITS_GREEDY!r})
speech, sr = modelpool.load_audio({SAMPLE!r}, sr=16000)
with pool.get_model_context() as (processor, model, device):
    inputs = processor(speech, sampling_rate=16000, return_tensors="np")
    logits = model(inputs.input_values).logits
    assert isinstance(logits, modelpool.Logits), type(logits)
    assert logits.shape[0] == 1 and logits.shape[2] == 32, logits.shape
    text = processor.batch_decode(logits.argmax(-1))[0]
assert text == pool.transcribe({SAMPLE!r}).text, text
assert pool.transcribe(list(speech)).text == text
print("ok", text)
pool.close()
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.startswith("ok "), p.stderr


def test_processor_resamples_telephone_audio(digits_pool):
    """8 kHz samples given with sampling_rate=8000 are resampled as the engine resamples them: the
    processor/model steps give the engine's transcript of the same samples."""
    speech8, sr = modelpool.load_audio(SAMPLE, sr=8000)
    want = digits_pool.transcribe(speech8, sample_rate=sr)
    with digits_pool.get_model_context() as (processor, model, _):
        inputs = processor(speech8, sampling_rate=sr, return_tensors="np")
        assert abs(inputs.input_values.shape[1] - 2 * len(speech8)) <= 2
        text = processor.batch_decode(model(inputs.input_values).logits.argmax(-1))[0]
    assert text == want.text
