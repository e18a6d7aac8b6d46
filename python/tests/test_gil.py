"""The engine runs without the GIL: two Python threads transcribing at once run in parallel.

Criterion (robust on a shared machine): the two concurrent calls' time intervals overlap by at least half
of the shorter one. If the GIL were held during the foreign call, the second thread could not even start
its call (it records its start time in Python) until the first returned: overlap ~0. The wall-clock
speedup over the same two calls one after the other is printed, and required to exceed 1.25 only when
the machine is quiet (1-minute load average <= 1.0 before the test) or MODELPOOL_STRICT_TIMING=1: with
other programs on the cores our two threads may share one core, running in parallel but not faster.
Workload: the embedded model on 20 s of audio per call, with one BLAS thread per worker (2 workers).
"""
import os
import threading
import time

import numpy as np
import pytest

import modelpool
from conftest import DIGITS_GREEDY as DIGITS, SAMPLE


def test_two_threads_run_in_parallel():
    load_before = os.getloadavg()[0]
    speech, _ = modelpool.load_audio(SAMPLE, sr=16000)
    audio = np.tile(speech, 4)  # ~20 s
    pool = modelpool.ModelPool(pool_size=2, model_dir=DIGITS, threads_per_worker=1, preload=True)
    try:
        want = pool.transcribe(audio).text  # warm-up: scratch grown, weight pages touched

        t0 = time.monotonic()
        for _ in range(2):
            assert pool.transcribe(audio).text == want
        sequential = time.monotonic() - t0

        spans, texts = [None, None], [None, None]
        barrier = threading.Barrier(2)

        def worker(i):
            barrier.wait()
            start = time.monotonic()
            texts[i] = pool.transcribe(audio).text
            spans[i] = (start, time.monotonic())

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
        t0 = time.monotonic()
        cpu0 = time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        concurrent = time.monotonic() - t0
        cpu = time.process_time() - cpu0
    finally:
        pool.close()

    assert texts == [want, want]
    (s1, e1), (s2, e2) = spans
    overlap = min(e1, e2) - max(s1, s2)
    shorter = min(e1 - s1, e2 - s2)
    speedup = sequential / concurrent
    print(f"sequential {sequential:.2f} s, concurrent {concurrent:.2f} s, speedup {speedup:.2f}, "
          f"overlap {overlap / shorter:.0%} of the shorter call, CPU {cpu:.2f} s "
          f"({cpu / concurrent:.2f} cores), load average before {load_before:.1f}")
    assert overlap >= 0.5 * shorter, "the calls did not overlap: is the GIL held during foreign calls?"
    if load_before <= 1.0 or os.environ.get("MODELPOOL_STRICT_TIMING") == "1":
        assert speedup > 1.25


def test_compute_runs_on_worker_threads():
    """A worker's compute calls run on that worker's own thread (modelpool/_runner.py: the engine's freed
    buffers then stay in pool_size malloc arenas), the library's error detail, which is per thread, still
    reaches the caller, and close() stops the threads."""
    speech, _ = modelpool.load_audio(SAMPLE, sr=16000)
    pool = modelpool.ModelPool(pool_size=2, model_dir=DIGITS, threads_per_worker=1, preload=True)
    names = lambda: sorted(t.name for t in threading.enumerate() if t.name.startswith("modelpool-worker-"))
    try:
        assert names() == []  # started on first use
        texts = []
        threads = [threading.Thread(target=lambda: texts.append(pool.transcribe(speech).text)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert texts == [texts[0]] * 6 and texts[0]
        used = names()
        assert used and set(used) <= {"modelpool-worker-0", "modelpool-worker-1"}, used
        with pool.get_model_context() as (processor, model, _):
            inputs = processor(speech, sampling_rate=16000, return_tensors="np")
            assert processor.batch_decode(model(inputs.input_values).logits.argmax(-1))[0] == texts[0]
            with pytest.raises(modelpool.InvalidArgumentError, match="sample_rate <= 0"):
                model.transcribe(speech, sample_rate=-16000)  # mp_lease_transcribe's own message
        with pytest.raises(modelpool.InvalidArgumentError, match="sample_rate <= 0"):
            pool.transcribe(speech, sample_rate=-16000)
        assert pool.get_statistics()["busy_models"] == 0
    finally:
        pool.close()
    assert names() == []
