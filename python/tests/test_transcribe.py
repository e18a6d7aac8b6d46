"""pool.transcribe(): files, open files, samples; .text, .words (word, start, end, confidence), .duration,
beam search with the model's word list, a caller's word list, hotwords; all equal to the C CLI's output."""
import io
import json
import subprocess

import numpy as np
import pytest

import modelpool
from conftest import DIGITS_GREEDY, SAMPLE, SAMPLE_TEXT


def cli_json(cli, *args):
    p = subprocess.run([cli, "transcribe", "--model", DIGITS_GREEDY, "--format", "json", *args, SAMPLE], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def same_result(res, want):
    assert res.text == want["text"]
    assert abs(res.duration - want["duration_s"]) < 1e-9
    assert [w.word for w in res.words] == [w["word"] for w in want["words"]]
    for got, w in zip(res.words, want["words"]):
        assert abs(got.start - w["start"]) < 1e-6 and abs(got.end - w["end"]) < 1e-6
        assert abs(got.confidence - w["confidence"]) < 1e-4


def test_file_greedy_and_beam(digits_pool, cli):
    same_result(digits_pool.transcribe(SAMPLE), cli_json(cli))
    beam = digits_pool.transcribe(SAMPLE, beam=16)
    assert beam.text == SAMPLE_TEXT  # the README's main job, from Python
    same_result(beam, cli_json(cli, "--beam", "16"))
    r = digits_pool.transcribe(SAMPLE)
    assert isinstance(r.words[0], modelpool.Word) and r.words[0].word == r.words[0][0]
    assert r.to_dict()["words"][0]["word"] == r.words[0].word and str(r) == r.text
    last = 0.0
    for w in r.words:
        assert last <= w.start < w.end <= r.duration and 0.0 <= w.confidence <= 1.0
        last = w.end


def test_samples_bytes_and_open_file(digits_pool):
    want = digits_pool.transcribe(SAMPLE)
    speech, sr = modelpool.load_audio(SAMPLE, sr=16000)
    assert sr == 16000 and speech.dtype == np.float32
    assert digits_pool.transcribe(speech).text == want.text
    assert digits_pool.transcribe(speech, sample_rate=16000).duration == pytest.approx(want.duration, abs=1e-3)
    with open(SAMPLE, "rb") as f:  # an open binary file: decoded in memory
        assert digits_pool.transcribe(f).text == want.text
    with open(SAMPLE, "rb") as f:
        assert digits_pool.transcribe(io.BytesIO(f.read())).text == want.text
    # 8 kHz telephone samples are resampled by the engine
    speech8, sr8 = modelpool.load_audio(SAMPLE, sr=8000)
    assert sr8 == 8000 and abs(len(speech8) - len(speech) / 2) <= 2
    r8 = digits_pool.transcribe(speech8, sample_rate=8000)
    assert abs(r8.duration - want.duration) < 1e-3 and r8.text.split()[1:4] == want.text.split()[1:4]


def test_words_and_hotwords(digits_pool):
    # a word list restricts the output (beam search implied, as in the server)
    r = digits_pool.transcribe(SAMPLE, words=["ONE", "FIVE", "ZERO"])
    assert r.text and set(r.text.split()) <= {"ONE", "FIVE", "ZERO"}
    # no model word list, greedy vs beam with a hotword: the hotword shows up
    plain = digits_pool.transcribe(SAMPLE, beam=16, lexicon="none")
    hot = digits_pool.transcribe(SAMPLE, lexicon="none", hotwords={"NINE EIGHT": 10.0})
    assert "NINE EIGHT" in hot.text and "NINE EIGHT" not in plain.text
    with pytest.raises(modelpool.DecoderFormatError):
        digits_pool.transcribe(SAMPLE, words=["NOT-A-WORD!"])  # '-' and '!' are not in the vocabulary
    with pytest.raises(ValueError):
        digits_pool.transcribe(SAMPLE, beam=5000)


def test_lease_level_transcribe(digits_pool):
    speech, _ = modelpool.load_audio(SAMPLE)
    with digits_pool.get_model_context() as (processor, model, device):
        r = model.transcribe(speech, beam=16)
    assert r.text == SAMPLE_TEXT
    with pytest.raises(modelpool.MisuseError):
        model.transcribe(speech)  # released: not held any more


def test_int8_dtype_matches_cli(cli):
    """dtype='int8' reaches mp_model_config.dtype: the same result as `transcribe --dtype int8`."""
    # greedy without the word list: not always SAMPLE_TEXT in int8. One worker, as the pool below (so the same
    # threads per worker): on AVX2 the fp32 sums around the int8 products differ in their last bits between
    # thread counts, and re-quantizing the next layer's rows turns that into ~1e-3 of a confidence
    want = cli_json(cli, "--dtype", "int8", "--workers", "1")
    assert want["text"] and want["words"]
    with modelpool.ModelPool(1, model_dir=DIGITS_GREEDY, dtype="int8") as pool:
        same_result(pool.transcribe(SAMPLE), want)
    with pytest.raises(ValueError):
        modelpool.ModelPool(1, model_dir=DIGITS_GREEDY, dtype="int4")
    with pytest.raises(ValueError):
        modelpool.ModelPool(1, arch="tiny", dtype="int8")
