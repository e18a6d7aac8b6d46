"""The original design's own test, ported: "Test 3: thread safety & load balancing".

30 threads at once (30 GSM lines) through a pool of 4, each doing the design's request: load the WAV at
16 kHz, processor(speech) -> model(input_values).logits -> argmax -> processor.batch_decode, release in
`finally`. Checks, and prints as the design does: one processor instance ("processor is shared"), four
model instances ("pool has 4 models"), every model served requests and the wait statistics are real
("load balancing works"), every request succeeded with the engine's transcript and every lease came back
("thread-safe works").
"""
import threading
import time

import pytest

import modelpool
from conftest import DIGITS_GREEDY as DIGITS, SAMPLE

N_THREADS = 30
POOL_SIZE = 4


def gsm_request(pool, wav, out, barrier):
    """One line's request, written as the design's handlers write it."""
    barrier.wait()
    t0 = time.monotonic()
    processor, model, device = pool.get_model()
    waited = time.monotonic() - t0
    try:
        speech, sr = modelpool.load_audio(wav, sr=16000)
        inputs = processor(speech, sampling_rate=16000, return_tensors="np")
        logits = model(inputs.input_values).logits
        predicted_ids = logits.argmax(-1)
        text = processor.batch_decode(predicted_ids)[0]
        out.append((id(processor), id(model), waited, text, device))
    finally:
        pool.release_model(model)


def test_thread_safety_and_load_balancing(capsys):
    pool = modelpool.ModelPool(pool_size=POOL_SIZE, model_dir=DIGITS)
    try:
        expected = pool.transcribe(SAMPLE).text  # the C engine on the same file
        results, errors = [], []
        barrier = threading.Barrier(N_THREADS)

        def line():
            try:
                gsm_request(pool, SAMPLE, results, barrier)
            except Exception as e:  # collected: a thread's exception must fail the test
                errors.append(repr(e))

        t0 = time.monotonic()
        threads = [threading.Thread(target=line, name=f"gsm-{i}") for i in range(N_THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = time.monotonic() - t0
        stats = pool.get_statistics()
    finally:
        pool.close()

    processors = {r[0] for r in results}
    models = {r[1] for r in results}
    waits = [r[2] for r in results]
    print("Test 3: thread safety & load balancing")
    print(f"  {N_THREADS} threads, pool_size={POOL_SIZE}: total time {total:.2f} s")
    print(f"  processor instances: {len(processors)}, model instances: {len(models)}")
    print(f"  wait time: max {max(waits):.3f} s, avg {sum(waits) / len(waits):.3f} s "
          f"(pool: avg {stats['avg_wait_time']:.3f} s, max {stats['max_wait_time']:.3f} s)")
    print(f"  requests per model: {stats['worker_requests']}")

    assert not errors, errors
    assert len(results) == N_THREADS
    assert len(processors) == 1
    print("  processor is shared")
    assert len(models) == POOL_SIZE
    print(f"  pool has {POOL_SIZE} models")
    # 30 requests, 4 models: 26 callers had to wait for one, and the pool's own figures agree
    assert stats["total_requests"] == N_THREADS + 1  # + the reference transcription
    assert stats["pool_size"] == POOL_SIZE
    assert all(n > 0 for n in stats["worker_requests"]), stats["worker_requests"]
    assert sum(stats["worker_requests"]) == N_THREADS + 1
    assert stats["avg_wait_time"] > 0 and stats["max_wait_time"] >= stats["avg_wait_time"]
    assert sorted(waits)[N_THREADS - POOL_SIZE - 1] > 0.0
    assert max(waits) >= stats["max_wait_time"] * 0.5
    # the wait histogram (Prometheus buckets) holds the same waits: every one in +Inf, cumulative counts,
    # its sum the mean's, and the longest wait's bucket the first to hold them all
    hist = stats["wait_histogram"]
    bounds = sorted(hist)
    assert bounds[0] == 0.001 and bounds[-2] == 30.0 and bounds[-1] == float("inf") and len(bounds) == 15
    assert hist[float("inf")] == stats["wait_count"] == N_THREADS + 1
    assert all(hist[a] <= hist[b] for a, b in zip(bounds, bounds[1:])), hist
    assert abs(stats["wait_sum_s"] - stats["avg_wait_time"] * stats["wait_count"]) < 1e-6
    full = next(b for b in bounds if hist[b] == N_THREADS + 1)
    assert full >= stats["max_wait_time"] and (full == bounds[0] or bounds[bounds.index(full) - 1] < stats["max_wait_time"])
    print("  load balancing works")
    assert all(r[3] == expected for r in results), {r[3] for r in results}
    assert {r[4] for r in results} == {"cpu"}
    assert stats["busy_models"] == 0 and stats["available_models"] == POOL_SIZE
    assert stats["completed"] == N_THREADS + 1 and stats["failed"] == 0 and stats["queue_depth"] == 0
    print("  thread-safe works")

    out = capsys.readouterr().out
    for check in ("processor is shared", "pool has 4 models", "load balancing works", "thread-safe works"):
        assert check in out
    print(out)


def test_lazy_loading():
    pool = modelpool.ModelPool(pool_size=4, model_dir=DIGITS)
    try:
        assert not pool.loaded
        s = pool.get_statistics()
        assert s["pool_size"] == 4 and s["total_requests"] == 0 and s["available_models"] == 4
        processor, model, device = pool.get_model()
        try:
            assert pool.loaded
            s = pool.get_statistics()
            assert s["n_workers_loaded"] == 1 and s["busy_models"] == 1 and s["available_models"] == 3
        finally:
            pool.release_model(model)
    finally:
        pool.close()


def test_context_manager_releases_on_exception():
    pool = modelpool.ModelPool(pool_size=1, model_dir=DIGITS)
    try:
        with pytest.raises(ZeroDivisionError):
            with pool.get_model_context() as (processor, model, device):
                assert model.is_held
                1 / 0
        assert not model.is_held
        s = pool.get_statistics()
        assert s["busy_models"] == 0 and s["available_models"] == 1
        with pool.get_model_context(timeout=0) as (processor2, model2, _):
            assert model2 is model and processor2 is processor
    finally:
        pool.close()
