"""Errors are exceptions carrying the library's status codes and mp_last_error() detail: misuse (double
release, a foreign model, a model used while not held), timeouts (a TimeoutError), a full queue, shutdown,
bad audio, bad models, bad arguments."""
import os
import threading
import time

import numpy as np
import pytest

import modelpool
from modelpool import errors
from conftest import DIGITS_GREEDY as DIGITS, REF, SAMPLE


def test_release_twice_and_foreign(digits_pool):
    other = modelpool.ModelPool(pool_size=1, model_dir=DIGITS)
    try:
        processor, model, device = digits_pool.get_model()
        digits_pool.release_model(model)
        with pytest.raises(modelpool.MisuseError) as e:
            digits_pool.release_model(model)
        # the library's own misuse error, passed through
        assert e.value.status == errors.MISUSE == 10 and e.value.code == "MP_ERR_MISUSE"
        assert "already released" in str(e.value) and "already released" in e.value.detail
        _, foreign, _ = other.get_model()
        try:
            with pytest.raises(modelpool.MisuseError, match="does not belong"):
                digits_pool.release_model(foreign)
        finally:
            other.release_model(foreign)
        with pytest.raises(modelpool.MisuseError):
            digits_pool.release_model("not a model")
        # nothing leaked: both models free, counts consistent
        s = digits_pool.get_statistics()
        assert s["busy_models"] == 0 and s["completed"] == s["total_requests"] == 1
    finally:
        other.close()


def test_model_not_held(digits_pool):
    processor, model, device = digits_pool.get_model()
    digits_pool.release_model(model)
    x = processor(np.zeros(16000, dtype=np.float32), return_tensors="np").input_values
    with pytest.raises(modelpool.MisuseError, match="not held"):
        model(x)


def test_timeout_is_a_timeout_error():
    pool = modelpool.ModelPool(pool_size=1, model_dir=DIGITS)
    try:
        _, model, _ = pool.get_model()
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as e:
            pool.get_model(timeout=0.2)
        waited = time.monotonic() - t0
        assert isinstance(e.value, modelpool.PoolTimeoutError) and isinstance(e.value, modelpool.ModelPoolError)
        assert e.value.status == errors.TIMEOUT == 7
        assert 0.15 <= waited < 5.0
        with pytest.raises(modelpool.PoolTimeoutError):
            pool.transcribe(SAMPLE, timeout=0)
        with pytest.raises(modelpool.PoolTimeoutError):
            with pool.get_model_context(timeout=0):
                pass
        pool.release_model(model)
        s = pool.get_statistics()
        assert s["timed_out"] >= 2 and s["busy_models"] == 0
        with pytest.raises(ValueError):
            pool.get_model(timeout=-1)
    finally:
        pool.close()


def test_default_timeout_from_the_constructor():
    pool = modelpool.ModelPool(pool_size=1, model_dir=DIGITS, timeout=0.1)
    try:
        _, model, _ = pool.get_model()
        with pytest.raises(modelpool.PoolTimeoutError):
            pool.get_model()
        pool.release_model(model)
    finally:
        pool.close()


def test_queue_full():
    pool = modelpool.ModelPool(pool_size=1, model_dir=DIGITS, queue_capacity=1)
    try:
        _, model, _ = pool.get_model()
        got = []
        waiter = threading.Thread(target=lambda: got.append(pool.get_model(timeout=10)))
        waiter.start()
        deadline = time.monotonic() + 10
        while pool.get_statistics()["queue_depth"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(modelpool.QueueFullError) as e:
            pool.get_model()
        assert e.value.status == errors.QUEUE_FULL
        pool.release_model(model)
        waiter.join()
        pool.release_model(got[0][1])  # the waiter was served when the model came back
        s = pool.get_statistics()
        assert s["rejected"] == 1 and s["completed"] == 2 and s["busy_models"] == 0
    finally:
        pool.close()


def test_close_wakes_waiters_with_shutdown():
    pool = modelpool.ModelPool(pool_size=1, model_dir=DIGITS)
    _, model, _ = pool.get_model()
    caught = []

    def waiter():
        try:
            pool.get_model()
        except modelpool.ShutdownError as e:
            caught.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    while pool.get_statistics()["queue_depth"] < 1:
        time.sleep(0.01)
    with pytest.raises(modelpool.PoolTimeoutError):
        pool.close(timeout=0.05)  # a model is still held: close() waits for it, here 50 ms
    t.join(10)
    assert caught and caught[0].status == errors.SHUTDOWN
    pool.release_model(model)  # releasing still works while shutting down
    pool.close()
    with pytest.raises(modelpool.ShutdownError):
        pool.get_model()
    with pytest.raises(modelpool.ShutdownError):
        pool.transcribe(SAMPLE)
    pool.close()  # idempotent


def test_bad_audio_and_models(digits_pool, tmp_path):
    bad = tmp_path / "not-audio.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(modelpool.AudioFormatError) as e:
        digits_pool.transcribe(str(bad))
    assert e.value.status == errors.AUDIO_FORMAT and "not-audio.wav" in str(e.value)
    with pytest.raises(OSError) as e:  # LibraryIOError is an OSError
        modelpool.load_audio(str(tmp_path / "missing.wav"))
    assert isinstance(e.value, modelpool.LibraryIOError) and "missing.wav" in str(e.value)
    with pytest.raises(modelpool.AudioFormatError):
        digits_pool.transcribe(open(bad, "rb"))
    with pytest.raises(modelpool.ModelPoolError) as e:
        modelpool.ModelPool(model_dir=str(tmp_path)).get_model()
    assert e.value.status in (errors.IO, errors.MODEL_FORMAT) and str(tmp_path) in str(e.value)
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in os.listdir(os.path.join(REF, "base_like")):
        (broken / f).write_bytes(open(os.path.join(REF, "base_like", f), "rb").read())
    (broken / "config.json").write_text('{"hidden_size": "big"}')
    with pytest.raises(modelpool.ModelFormatError) as e:
        modelpool.ModelPool(model_dir=str(broken)).load()
    assert "config.json" in str(e.value)
    with pytest.raises(ValueError):
        modelpool.ModelPool(device="cuda")
    with pytest.raises(ValueError):
        modelpool.ModelPool(model_dir=DIGITS, arch="tiny")
    with pytest.raises(modelpool.InvalidArgumentError):
        modelpool.ModelPool(arch="no-such-arch").load()
    with pytest.raises(modelpool.LibraryIOError):
        digits_pool.transcribe(SAMPLE, lm=str(tmp_path / "missing.arpa"))


def test_close_frees_open_streams():
    pool = modelpool.ModelPool(pool_size=1, model_dir=DIGITS)
    s = pool.stream(sample_rate=8000)
    s.feed(np.zeros(8000, dtype=np.float32))
    pool.close()  # the stream is freed with the pool, not left dangling
    with pytest.raises(modelpool.ShutdownError):
        s.feed(np.zeros(800, dtype=np.float32))
    with pytest.raises(modelpool.ShutdownError):
        s.finish()
    s.close()
    with pytest.raises(modelpool.ShutdownError):
        pool.stream()


def test_pool_as_context_manager():
    with modelpool.ModelPool(pool_size=1, model_dir=DIGITS) as pool:
        assert pool.transcribe(np.zeros(16000, dtype=np.float32)).text == ""
    assert "closed" in repr(pool)
    with pytest.raises(modelpool.ShutdownError):
        pool.get_model()


def test_one_model_from_several_threads_is_serialized(digits_pool):
    """A held model shared by threads (against the rules) runs one pass at a time instead of
    corrupting its worker's scratch: every result is the right one."""
    speech, _ = modelpool.load_audio(SAMPLE)
    processor, model, _ = digits_pool.get_model()
    try:
        x = processor(speech, return_tensors="np").input_values
        want = model(x).logits
        outs = []
        threads = [threading.Thread(target=lambda: outs.append(model(x).logits)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(outs) == 4 and all(np.array_equal(o, want) for o in outs)
    finally:
        digits_pool.release_model(model)
