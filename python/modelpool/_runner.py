"""One Python thread per pool worker, which makes that worker's compute calls (forward, transcribe).

Why: glibc gives each thread that allocates a malloc arena of its own, up to 8 per core, and an arena
keeps what was freed in it for reuse. The engine's per-call buffers (oneDNN's GEMM packing, about 1 MB a
call for the embedded model) are freed by the thread that ran the call. A C caller thread allocates
nothing until it runs, so it takes over the arena of a caller that finished: `modelpool bench` with 30
callers and 4 workers ends with 5 arenas. A Python thread allocates as it starts, so 30 line threads
hold 16 arenas at once (on 2 cores), and each of them ends up caching a call's buffers: 7-15 MB more
peak RSS with 30 threads than the C bench. Run on one thread per worker, the calls' buffers stay in
pool_size arenas whoever the callers are. The caller waits with the GIL released, and the call itself
releases it as every ctypes call does, so threads still run the engine in parallel.
"""
import queue
import threading


def _serve(jobs):
    while True:
        job = jobs.get()
        if job is None:
            return
        fn, args, done, box = job
        try:
            box.append((True, fn(*args)))
        except BaseException as e:  # handed to the caller, raised there
            box.append((False, e))
        finally:
            done.release()


class WorkerThreads:
    """call(w, fn, *args) runs fn(*args) on worker w's thread (started on first use) and returns its
    result, or raises its exception, in the caller."""

    def __init__(self, n, name):
        self._name = name
        self._lock = threading.Lock()
        self._jobs = [None] * n
        self._threads = [None] * n
        self._closed = False

    def _queue(self, w):
        jobs = self._jobs[w]
        if jobs is not None:
            return jobs
        with self._lock:
            if self._closed:
                raise RuntimeError("worker threads are stopped")
            if self._jobs[w] is None:
                jobs = queue.SimpleQueue()
                t = threading.Thread(target=_serve, args=(jobs,), name=f"{self._name}-{w}", daemon=True)
                t.start()
                self._jobs[w], self._threads[w] = jobs, t
            return self._jobs[w]

    def call(self, w, fn, *args):
        if threading.current_thread() is self._threads[w]:
            return fn(*args)
        done = threading.Lock()
        done.acquire()
        box = []
        self._queue(w).put((fn, args, done, box))
        try:
            done.acquire()
        except BaseException:
            # Interrupted (KeyboardInterrupt): the call runs on a worker the caller holds, so it must end
            # before the caller can release the worker to someone else.
            done.acquire()
            raise
        ok, value = box[0]
        if ok:
            return value
        raise value

    def close(self):
        """Stop the threads (after the calls queued so far). Idempotent."""
        with self._lock:
            self._closed = True
            jobs, threads = self._jobs, self._threads
            self._jobs, self._threads = [None] * len(jobs), [None] * len(threads)
        for q in jobs:
            if q is not None:
                q.put(None)
        me = threading.current_thread()
        for t in threads:
            if t is not None and t is not me:
                t.join()
