"""pool.stream(): a call fed piece by piece at 8 kHz; partial() while it runs, finish() at the end, equal to
transcribing the whole recording at once; a stream holds a model only while a chunk runs."""
import numpy as np
import pytest

import modelpool
from conftest import SAMPLE


@pytest.fixture(scope="module")
def call8k():
    speech, sr = modelpool.load_audio(SAMPLE, sr=8000)
    return np.tile(speech, 5), sr  # ~25 s: one full 20 s chunk, then the rest


def test_partial_then_final(digits_pool, call8k):
    call, sr = call8k
    want = digits_pool.transcribe(call, sample_rate=sr)
    piece = sr // 2  # 0.5 s writes, as a line handler receives them
    partials = []
    with digits_pool.stream(sample_rate=sr) as s:
        for i in range(0, len(call), piece):
            s.feed(call[i:i + piece])
            if i % (5 * sr) == 0:
                partials.append(s.partial())
            # between chunks the stream holds no model
            assert digits_pool.get_statistics()["busy_models"] == 0
        final = s.finish()
        with pytest.raises(modelpool.MisuseError):
            s.feed(call[:piece])  # finished: no more audio
    assert partials[0].text == "" and partials[-1].text  # the first chunk ran before the end
    durations = [p.duration for p in partials]
    assert durations == sorted(durations) and durations[-1] < final.duration
    for p in partials:
        assert final.text.startswith(p.text)  # greedy: the partial transcript is a prefix
    assert final.text == want.text
    assert abs(final.duration - len(call) / sr) < 1e-6
    assert [w.word for w in final.words] == final.text.split()
    assert [round(w.start, 2) for w in final.words] == [round(w.start, 2) for w in want.words]


def test_stream_beam_and_bytes(digits_pool, call8k):
    call, sr = call8k
    pcm = np.clip(np.round(call * 32768), -32768, 32767).astype("<i2").tobytes()
    with digits_pool.stream(sample_rate=sr, beam=16) as s:
        for i in range(0, len(pcm), 320):  # 20 ms frames of 16-bit PCM, as AudioSocket sends them
            s.feed(pcm[i:i + 320])
        text = s.finish().text
    assert text == digits_pool.transcribe(call, sample_rate=sr, beam=16).text


def test_stream_closed(digits_pool):
    s = digits_pool.stream(sample_rate=8000)
    s.feed(np.zeros(800, dtype=np.float32))
    s.close()
    with pytest.raises(modelpool.MisuseError, match="closed"):
        s.feed(np.zeros(800, dtype=np.float32))
    s.close()  # idempotent
