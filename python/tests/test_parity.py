"""processor/model against torchaudio (the committed reference logits of every fixture config) and against
the C CLI's --dump-logits; batch_decode against the fixtures' expected Wav2Vec2CTCTokenizer text and the
engine's own transcript."""
import os
import subprocess

import numpy as np
import pytest

import modelpool
from conftest import CONFIGS, REF, reference, ref_wav


def tolerance(want):
    # the fixtures' rule (reference.json "tolerance"): max|diff| <= 1e-3 * max(1, max|expected|)
    return 1e-3 * max(1.0, float(np.abs(want).max()))


@pytest.fixture(scope="module", params=CONFIGS)
def config_pool(request):
    pool = modelpool.ModelPool(pool_size=1, model_dir=os.path.join(REF, request.param))
    yield request.param, pool
    pool.close()


def test_against_torchaudio(config_pool):
    config, pool = config_pool
    ref = reference(config)
    with pool.get_model_context() as (processor, model, device):
        for item in ref["inputs"]:
            speech = np.load(os.path.join(REF, "inputs", item["name"] + ".npy"))
            inputs = processor(speech, sampling_rate=16000, return_tensors="np")
            assert inputs.input_values.shape == (1, item["n_samples"]) and inputs.input_values.dtype == np.float32
            logits = model(inputs.input_values).logits
            want = np.load(os.path.join(REF, config, item["logits"]))
            assert logits.shape == (1, item["frames"], item["vocab"]) and logits.dtype == np.float32
            diff = float(np.abs(logits[0] - want).max())
            assert diff <= tolerance(want), f"{config}/{item['name']}: max diff {diff}"
            ids = logits.argmax(-1)
            assert processor.batch_decode(ids) == [item["text"]]
            assert processor.decode(ids[0]) == item["text"]
    for item in ref["inputs"]:  # the engine's own path (decode the WAV, normalize in C) agrees
        assert pool.transcribe(ref_wav(item["name"])).text == item["text"]


def test_normalization_is_huggingface_s():
    pool = modelpool.ModelPool(pool_size=1, model_dir=os.path.join(REF, "base_like"))
    try:
        x = np.load(os.path.join(REF, "inputs", "in1.npy"))
        got = pool.processor(x, sampling_rate=16000, return_tensors="np").input_values[0]
        want = (x - x.mean()) / np.sqrt(x.var() + 1e-7)  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
        assert float(np.abs(got - want).max()) < 1e-5
        # do_normalize false (the fp16 config): the values go through untouched
        raw = modelpool.ModelPool(pool_size=1, model_dir=os.path.join(REF, "fp16"))
        try:
            assert np.array_equal(raw.processor(x, return_tensors="np").input_values[0], x.astype(np.float32))
        finally:
            raw.close()
    finally:
        pool.close()


@pytest.mark.parametrize("config", ["base_like", "large_like", "utf8", "fp16"])
def test_against_cli_dump_logits(cli, tmp_path, config):
    model_dir = os.path.join(REF, config)
    pool = modelpool.ModelPool(pool_size=1, model_dir=model_dir)
    try:
        for name in ("in0", "in1"):
            out = tmp_path / f"{name}.npy"
            p = subprocess.run([cli, "transcribe", "--model", model_dir, "--dump-logits", str(out), ref_wav(name)],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            c_logits = np.load(out)
            c_text = p.stdout.strip()
            speech, sr = modelpool.load_audio(ref_wav(name), sr=16000)
            with pool.get_model_context() as (processor, model, _):
                logits = model(processor(speech, sampling_rate=sr, return_tensors="np").input_values).logits[0]
                text = processor.batch_decode(logits[None].argmax(-1))[0]
            assert logits.shape == c_logits.shape
            # same engine; only the normalization is computed apart (Python float64 vs C float)
            diff = float(np.abs(logits - c_logits).max())
            assert diff <= 1e-4 * max(1.0, float(np.abs(c_logits).max())), f"{config}/{name}: {diff}"
            assert text == c_text
            kept = pool.transcribe(ref_wav(name), keep_logits=True)
            assert kept.text == c_text
            # BLAS threads differ between the CLI's pool and this one: same sums, other order
            assert float(np.abs(kept.logits - c_logits).max()) <= 1e-4 * max(1.0, float(np.abs(c_logits).max()))
    finally:
        pool.close()


def test_torch_tensors():
    torch = pytest.importorskip("torch")
    ref = reference("base_like")
    pool = modelpool.ModelPool(pool_size=1, model_dir=os.path.join(REF, "base_like"))
    try:
        speech = np.load(os.path.join(REF, "inputs", "in0.npy"))
        processor, model, device = pool.get_model()
        try:
            inputs = processor(speech, sampling_rate=16000, return_tensors="pt").to(device)
            assert isinstance(inputs["input_values"], torch.Tensor)
            with torch.no_grad():
                logits = model(inputs.input_values).logits
            assert isinstance(logits, torch.Tensor) and tuple(logits.shape) == (1, 49, 32)
            predicted_ids = torch.argmax(logits, dim=-1)
            assert processor.batch_decode(predicted_ids)[0] == ref["inputs"][0]["text"]
        finally:
            pool.release_model(model)
    finally:
        pool.close()


def test_batches_and_padding():
    ref = reference("large_like")
    pool = modelpool.ModelPool(pool_size=1, model_dir=os.path.join(REF, "large_like"))
    try:
        x0, x1 = (np.load(os.path.join(REF, "inputs", n + ".npy")) for n in ("in0", "in1"))
        with pool.get_model_context() as (processor, model, _):
            with pytest.raises(ValueError, match="padding"):
                processor([x0, x1], return_tensors="np")  # ragged without padding, as HF refuses
            # with an attention mask each item is normalized and run over its real samples alone
            inputs = processor([x0, x1], padding=True, return_attention_mask=True, return_tensors="np")
            assert inputs.input_values.shape == (2, len(x1)) and inputs["attention_mask"].shape == (2, len(x1))
            assert int(inputs.attention_mask[0].sum()) == len(x0)
            assert np.all(inputs.input_values[0, len(x0):] == 0.0)
            logits = model(inputs.input_values, attention_mask=inputs.attention_mask).logits
            assert logits.shape == (2, 118, 32)
            texts = processor.batch_decode(logits.argmax(-1))
            assert texts == [ref["inputs"][0]["text"], ref["inputs"][1]["text"]]
            for b, item in enumerate(ref["inputs"]):
                want = np.load(os.path.join(REF, "large_like", item["logits"]))
                assert float(np.abs(logits[b, :item["frames"]] - want).max()) <= tolerance(want)
    finally:
        pool.close()


def test_skip_special_tokens_and_cleanup():
    pool = modelpool.ModelPool(pool_size=1, model_dir=os.path.join(REF, "base_like"))
    try:
        tok = pool.processor.tokenizer
        v = tok.get_vocab()
        ids = [v["<pad>"], v["H"], v["H"], v["<pad>"], v["H"], v["|"], v["|"], v["<pad>"], v["|"], v["<unk>"],
               v["<pad>"], v["I"], v["|"], v["'"], v["S"], v["S"], v["|"]]
        # repeats collapse before blanks go ("H H <pad> H" is "HH", "| |" one space, "| <pad> |" two);
        # delimiters become spaces; <unk> stays on the CTC path; strip() at the ends
        assert tok.decode(ids) == "HH  <unk>I 'S"
        # HF removes special tokens before grouping when skipping them: "H <pad> H" is then one H
        assert tok.decode(ids, skip_special_tokens=True) == "H I 'S"
        assert tok.batch_decode(np.array([ids, ids])) == ["HH  <unk>I 'S"] * 2
        # HF's clean_up_tokenization on request (off by default, as the engine and the pipeline do)
        spaced = [v["I"], v["|"], v["'"], v["|"], v["M"]]
        assert tok.decode(spaced) == "I ' M"
        assert tok.decode(spaced, clean_up_tokenization_spaces=True) == "I'M"
        assert tok.decode([v["|"], v["A"], v["|"]]) == "A"
    finally:
        pool.close()
