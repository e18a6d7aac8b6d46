"""ModelPool: the original design's API (get_model / release_model / get_model_context /
get_statistics) over libmodelpool's pool, plus direct transcription and streams.

DESIGN
  One mp_model (weights, memory-mapped once) and one mp_pool of pool_size workers, created lazily on
  the first use as the design loads its models. The design's "processor" is one Processor per pool; its
  "model instances" are pool_size Model objects, one per worker, so `id(model)` takes exactly pool_size
  values. get_model() is mp_pool_acquire (FIFO, timeouts, backpressure in C, with the GIL released while
  waiting); the lease is kept on the worker's Model until release_model() returns it. A Model called
  while not held, released twice or released to another pool raises MisuseError (a repeated release is
  passed to mp_lease_release with the stale lease, which the library recognizes as MP_ERR_MISUSE).
  model(input_values) runs mp_lease_forward on the held worker: the network alone on the processor's
  output, as Wav2Vec2ForCTC does.

  close() (also on `with ModelPool() as pool:` exit) shuts the pool down, waits for outstanding leases,
  then for the Python calls still inside the library (counted in _calls), frees open streams, the pool
  and the model, in that order, so no call ever runs on a freed handle.
"""
import array
import collections
import contextlib
import ctypes
import os
import threading

from . import _samples, errors
from ._features import FeatureExtractor, Logits, ModelOutput
from ._lib import DTYPES, LIVE_FINAL, Hotword, LiveStats, ModelInfo, PoolStats, c_float_p, lib
from ._lib import Word as _WordStruct
from ._runner import WorkerThreads
from ._samples import np
from ._tokenizer import Tokenizer, read_feature_extractor

_RAW_FORMATS = {None: 0, "s16le": 1, "mulaw": 2, "alaw": 3}
_PAD_FILL = -30.0  # logits of frames past a shorter item's end in a masked batch: a certain blank


def _error(status, detail=None):
    """The exception for a failed call, with mp_last_error() (this thread's unless given)."""
    detail = (lib.mp_last_error() if detail is None else detail) or b""
    return errors.make_error(status, lib.mp_strerror(status).decode(), detail.decode("utf-8", "replace"))


def _check(status):
    if status != errors.OK:
        raise _error(status)


def _with_detail(fn, *args):
    """A library call's status and, when it failed, the calling thread's mp_last_error()."""
    st = fn(*args)
    return st, (lib.mp_last_error() or b"") if st != errors.OK else None


def _timeout_ms(timeout):
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError("timeout must be >= 0 seconds (None waits for the pool's default)")
    return int(round(timeout * 1000))


def _decode(b):
    return b.decode("utf-8", "replace") if b is not None else ""


def _logits_of(res):
    """A result's logits: numpy [frames, vocab], or (array('f'), frames, vocab) without numpy."""
    nf, nv = ctypes.c_int(0), ctypes.c_int(0)
    p = lib.mp_result_logits(res, ctypes.byref(nf), ctypes.byref(nv))
    t, v = nf.value, nv.value
    if np is not None:
        if not p or t == 0:
            return np.zeros((t, v), dtype=np.float32)
        return np.ctypeslib.as_array(p, shape=(t, v)).copy()
    a = array.array("f", bytes((ctypes.c_float * (t * v)).from_address(ctypes.addressof(p.contents)))) \
        if p and t else array.array("f")
    return a, t, v


Word_ = collections.namedtuple("Word", "word start end confidence")


class Word(Word_):
    """One word of a transcript: text, start and end in seconds, confidence 0..1."""
    __slots__ = ()


class Result:
    """A transcript: .text, .words (Word(word, start, end, confidence)), .duration (seconds),
    .logits ([frames, vocab], when keep_logits was asked)."""

    __slots__ = ("text", "words", "duration", "logits")

    def __init__(self, text, words, duration, logits=None):
        self.text, self.words, self.duration, self.logits = text, words, duration, logits

    @classmethod
    def _take(cls, res, keep_logits=False):
        """Copy a mp_result into Python objects and free it."""
        try:
            text = _decode(lib.mp_result_text(res))
            words = []
            w = _WordStruct()
            for i in range(lib.mp_result_n_words(res)):
                _check(lib.mp_result_word(res, i, ctypes.byref(w)))
                words.append(Word(_decode(w.word), w.start_s, w.end_s, w.confidence))
            logits = _logits_of(res) if keep_logits else None
            if logits is not None and np is None:
                a, t, v = logits
                logits = Logits([a], t, v)
            return cls(text, words, lib.mp_result_duration_s(res), logits)
        finally:
            lib.mp_result_free(res)

    def to_dict(self):
        return {"text": self.text, "duration": self.duration,
                "words": [{"word": w.word, "start": w.start, "end": w.end, "confidence": w.confidence}
                          for w in self.words]}

    def __str__(self):
        return self.text

    def __repr__(self):
        return f"Result(text={self.text!r}, words={len(self.words)}, duration={self.duration:.3f})"


class Processor:
    """Wav2Vec2Processor: one shared instance per pool. processor(speech, sampling_rate=16000,
    return_tensors="np") -> BatchFeature; processor.batch_decode(ids) -> texts."""

    def __init__(self, feature_extractor, tokenizer):
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer

    def __call__(self, *args, **kwargs):
        if "audio" in kwargs:
            args = (kwargs.pop("audio"),) + args
        return self.feature_extractor(*args, **kwargs)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def sampling_rate(self):
        return self.feature_extractor.sampling_rate


class Model:
    """One worker of the pool (the design's model instance). Call it only between get_model() and
    release_model(): model(input_values).logits is [batch, frames, vocab]."""

    def __init__(self, pool, worker):
        self._pool = pool
        self.worker = worker
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()  # one forward pass at a time: a worker's scratch is not shared
        self._lease = None       # the mp_lease handle while held
        self._last_lease = None  # the one last released (a second release is passed to C: MISUSE)
        self.config = pool._config_view

    def _attach(self, lease):
        with self._lock:
            self._lease = lease
            self._last_lease = None

    def _detach(self):
        with self._lock:
            lease, self._lease = self._lease, None
            if lease is not None:
                self._last_lease = lease
            return lease, self._last_lease

    def _held(self):
        lease = self._lease
        if lease is None:
            raise errors.MisuseError(
                f"model {self.worker} is not held: call get_model() (or use get_model_context()) first",
                errors.MISUSE)
        return lease

    @property
    def is_held(self):
        return self._lease is not None

    # torch.nn.Module habits of the design's code: harmless here
    def eval(self):
        return self

    def to(self, device):
        if str(device) not in ("cpu", "cpu:0"):
            raise ValueError(f"modelpool runs on the CPU; cannot move the model to {device!r}")
        return self

    def __call__(self, input_values, attention_mask=None, **kwargs):
        """The network on the processor's output: ModelOutput with .logits [batch, frames, vocab]
        (a torch tensor for torch input, else numpy, else a Logits without numpy)."""
        lease = self._held()
        torch_in = _samples._is_torch(input_values)
        rows = input_values if _samples.is_sequence_of_rows(input_values) else [input_values]
        masks = None
        if attention_mask is not None:
            masks = attention_mask.tolist() if hasattr(attention_mask, "tolist") else list(attention_mask)
            if masks and isinstance(masks[0], int):
                masks = [masks]
            if len(masks) != len(rows):
                raise ValueError(f"attention_mask has {len(masks)} rows for {len(rows)} inputs")
        outs = []
        for i, row in enumerate(rows):
            s = _samples.as_samples(row)
            if masks is not None:
                s = _samples.Samples(s.ptr, min(s.n, int(sum(masks[i]))), s)
            res = ctypes.c_void_p()
            with self._run_lock:
                self._pool._run_on_worker(self.worker, lib.mp_lease_forward, lease, s.ptr, s.n, ctypes.byref(res))
            try:
                outs.append(_logits_of(res))
            finally:
                lib.mp_result_free(res)
        return ModelOutput(self._stack(outs, torch_in))

    forward = __call__

    def _stack(self, outs, torch_in):
        vocab = self._pool._info.vocab_size
        pad = self._pool.processor.tokenizer.pad_token_id or 0
        if np is None:
            t_max = max((t for _, t, _ in outs), default=0)
            rows = []
            for a, t, v in outs:
                fill = array.array("f", ([_PAD_FILL] * pad + [0.0] + [_PAD_FILL] * (vocab - pad - 1)) * (t_max - t))
                rows.append(a + fill)
            return Logits(rows, t_max, vocab)
        t_max = max((o.shape[0] for o in outs), default=0)
        out = np.full((len(outs), t_max, vocab), _PAD_FILL, dtype=np.float32)
        out[:, :, pad] = 0.0
        for b, o in enumerate(outs):
            out[b, :o.shape[0]] = o
        if torch_in:
            import torch
            return torch.from_numpy(out)
        return out

    def transcribe(self, samples, sample_rate=None, **decoding):
        """Transcribe samples on this held worker (mp_lease_transcribe): a Result."""
        lease = self._held()
        def run(s, rate, req, out):
            with self._run_lock:
                self._pool._run_on_worker(self.worker, lib.mp_lease_transcribe, lease, s.ptr, s.n, rate, req, out)
        return self._pool._run_samples(samples, sample_rate, decoding, run)

    def __repr__(self):
        return f"<modelpool.Model worker={self.worker} {'held' if self.is_held else 'free'}>"


class _ConfigView(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class ModelPool:
    """A pool of pool_size models sharing one copy of the weights (the original design's ModelPool).

    model_dir: a HuggingFace wav2vec2-CTC directory; None = MODELPOOL_MODEL or the embedded digits model.
    arch/seed: random weights of a named architecture ("base", "large", "tiny") instead, for tests and
    benchmarks. device: "cpu" (the only one). timeout: default wait of get_model() in seconds (None:
    forever). queue_capacity: waiting callers allowed (0: unbounded; past it QueueFullError).
    dtype: "fp32" (default) or "int8" (big matrix products quantized at load; needs model_dir, a build
    with oneDNN). threads_per_worker: BLAS threads per worker (0: cores / pool_size). preload: create every worker
    now instead of on first use. Models are loaded lazily on the first get_model()/transcribe()/stream().
    """

    def __init__(self, pool_size=4, model_dir=None, device="cpu", *, arch=None, seed=1, timeout=None,
                 queue_capacity=0, threads_per_worker=0, preload=False, weight_copies=False,
                 stuck_lease_s=60.0, wait_warning_s=1.0, max_scratch_bytes=0, dtype="fp32"):
        if str(device) not in ("cpu", "cpu:0", "auto"):
            raise ValueError(f"device={device!r}: modelpool runs on the CPU (device='cpu')")
        if pool_size is None or int(pool_size) < 0:
            raise ValueError("pool_size must be >= 1 (0: one per core)")
        if arch is not None and model_dir is not None:
            raise ValueError("give model_dir or arch, not both")
        if dtype not in DTYPES:
            raise ValueError(f"dtype={dtype!r}: expected 'fp32' or 'int8'")
        if arch is not None and dtype != "fp32":
            raise ValueError("dtype='int8' needs model_dir (random weights are fp32 only)")
        self.dtype = dtype
        self.pool_size = int(pool_size) or os.cpu_count() or 1
        self.model_dir = model_dir
        self.arch = arch
        self.seed = seed
        self.device = "cpu"
        self._cfg = dict(timeout=timeout, queue_capacity=queue_capacity, threads_per_worker=threads_per_worker,
                         preload=preload, weight_copies=weight_copies, stuck_lease_s=stuck_lease_s,
                         wait_warning_s=wait_warning_s, max_scratch_bytes=max_scratch_bytes)
        self._lock = threading.Lock()       # lazy loading, close, the call counter
        self._idle = threading.Condition(self._lock)
        self._calls = 0                     # Python calls inside the library on the pool
        self._closing = False               # close() began: no new acquires
        self._freeing = False               # close() is freeing: no call at all
        self._close_lock = threading.Lock()
        self._model = None                  # mp_model *
        self._pool = None                   # mp_pool *
        self._processor = None
        self._models = []
        self._streams = set()
        self._lm_cache = {}                 # ARPA path -> mp_lm *
        self._lex_cache = {}                # lexicon path -> mp_lexicon *
        self._info = None
        self._config_view = None
        self._threads = None                # one thread per worker for its compute calls (_runner.py)

    # ---- loading and lifetime -----------------------------------------------------------------------

    def _resolve_model_dir(self):
        from . import default_model_dir
        d = self.model_dir if self.model_dir is not None else default_model_dir()
        return os.fspath(d)

    def _load(self):
        model = ctypes.c_void_p()
        if self.arch is not None:
            _check(lib.mp_model_create_random(self.arch.encode(), int(self.seed), ctypes.byref(model)))
            model_dir = ""
        else:
            model_dir = self._resolve_model_dir()
            mcfg = lib.mp_model_default_config()
            mcfg.dtype = DTYPES[self.dtype]
            _check(lib.mp_model_load(model_dir.encode(), ctypes.byref(mcfg), ctypes.byref(model)))
        try:
            info = ModelInfo()
            _check(lib.mp_model_get_info(model, ctypes.byref(info)))
            cfg = lib.mp_pool_default_config()
            cfg.n_workers = self.pool_size
            cfg.queue_capacity = int(self._cfg["queue_capacity"])
            cfg.default_timeout_ms = _timeout_ms(self._cfg["timeout"])
            cfg.preload = int(bool(self._cfg["preload"]))
            cfg.n_threads_per_worker = int(self._cfg["threads_per_worker"])
            cfg.stuck_lease_s = float(self._cfg["stuck_lease_s"])
            cfg.wait_warning_s = float(self._cfg["wait_warning_s"])
            cfg.weight_copies = int(bool(self._cfg["weight_copies"]))
            cfg.max_scratch_bytes = int(self._cfg["max_scratch_bytes"])
            pool = ctypes.c_void_p()
            _check(lib.mp_pool_create(model, ctypes.byref(cfg), ctypes.byref(pool)))
        except BaseException:
            lib.mp_model_free(model)
            raise
        tokens = [_decode(lib.mp_model_token(model, i)) for i in range(info.vocab_size)]
        path = _decode(info.path) or None
        fe = FeatureExtractor(read_feature_extractor(path, info.sample_rate), self._resample)
        self._info = info
        self._config_view = _ConfigView(
            architectures=[_decode(info.architecture)], vocab_size=info.vocab_size, hidden_size=info.hidden_size,
            num_hidden_layers=info.n_layers, num_attention_heads=info.n_heads,
            intermediate_size=info.intermediate_size, do_stable_layer_norm=bool(info.stable_layer_norm),
            feat_extract_norm="group" if info.group_norm else "layer", inputs_to_logits_ratio=info.frame_stride,
            n_params=info.n_params, dtype=_decode(info.dtype), path=path)
        self._processor = Processor(fe, Tokenizer(tokens, path))
        self._models = [Model(self, w) for w in range(self.pool_size)]
        self._threads = WorkerThreads(self.pool_size, "modelpool-worker")
        self._model, self._pool = model, pool

    def _ensure(self):
        """The mp_pool, loading on first use; raises ShutdownError once closed."""
        pool = self._pool
        if pool is not None and not self._closing:
            return pool
        with self._lock:
            if self._closing:
                raise errors.ShutdownError("the pool is closed", errors.SHUTDOWN)
            if self._pool is None:
                self._load()
            return self._pool

    @contextlib.contextmanager
    def _call(self, allow_closing=False):
        """Count a call into the library on the pool, so close() frees nothing under it."""
        pool = self._ensure() if not allow_closing else self._pool
        with self._lock:
            if self._pool is None or self._freeing or (self._closing and not allow_closing):
                raise errors.ShutdownError("the pool is closed", errors.SHUTDOWN)
            self._calls += 1
        try:
            yield pool
        finally:
            with self._lock:
                self._calls -= 1
                if self._calls == 0:
                    self._idle.notify_all()

    def load(self):
        """Load the model now instead of on first use. Returns self."""
        self._ensure()
        return self

    @property
    def loaded(self):
        return self._pool is not None

    def close(self, timeout=None):
        """Refuse new work, wait for leased models to come back (timeout in seconds, None: forever),
        free streams, pool and model. PoolTimeoutError if models are still held at the timeout (the
        pool then stays shut down but allocated; call close() again). Idempotent."""
        with self._close_lock:
            with self._lock:
                self._closing = True
                pool = self._pool
            if pool is None:
                return
            _check(lib.mp_pool_shutdown(pool, _timeout_ms(timeout)))
            with self._lock:
                self._freeing = True  # from here no call enters the library on this pool
                while self._calls:
                    self._idle.wait()
                streams, self._streams = list(self._streams), set()
            self._threads.close()
            for s in streams:  # outside self._lock: a stream call holds its own lock, then ours
                s._free()
            with self._lock:
                for lm in self._lm_cache.values():
                    lib.mp_lm_free(lm)
                for lex in self._lex_cache.values():
                    lib.mp_lexicon_free(lex)
                self._lm_cache.clear()
                self._lex_cache.clear()
                lib.mp_pool_free(self._pool)
                lib.mp_model_free(self._model)
                self._pool = self._model = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if self._pool is not None and lib is not None:
                self.close(timeout=0)
        except Exception:
            pass  # models still held: leave the memory rather than block in a finalizer

    # ---- the original design's API -------------------------------------------------------------------

    @property
    def processor(self):
        self._ensure()
        return self._processor

    def get_model(self, timeout=None):
        """Wait first come, first served for a free model: (processor, model, device). timeout in
        seconds (None: the pool's default). Raises PoolTimeoutError (a TimeoutError), QueueFullError,
        ShutdownError. Release it with release_model(model), in a finally block."""
        ms = _timeout_ms(timeout)
        lease = ctypes.c_void_p()
        with self._call() as pool:
            st = lib.mp_pool_acquire(pool, ms, ctypes.byref(lease))
            if st != errors.OK:
                raise _error(st)
            model = self._models[lib.mp_lease_worker(lease)]
            model._attach(lease.value)
        return self._processor, model, self.device

    def release_model(self, model):
        """Give the model back. Releasing it twice, or a model of another pool, raises MisuseError."""
        if not isinstance(model, Model) or model._pool is not self:
            raise errors.MisuseError("release_model: this model does not belong to this pool", errors.MISUSE)
        lease, last = model._detach()
        if lease is None:
            if last is None:
                raise errors.MisuseError(f"release_model: model {model.worker} was never acquired",
                                         errors.MISUSE)
            lease = last  # the library recognizes a stale lease: MP_ERR_MISUSE with its own message
        with self._call(allow_closing=True):
            _check(lib.mp_lease_release(lease))

    @contextlib.contextmanager
    def get_model_context(self, timeout=None):
        """with pool.get_model_context() as (processor, model, device): ... -- always released."""
        processor, model, device = self.get_model(timeout)
        try:
            yield processor, model, device
        finally:
            self.release_model(model)

    def get_statistics(self):
        """The design's keys (pool_size, total_requests, avg_wait_time, available_models, busy_models)
        and the library's other statistics (times in seconds)."""
        if self._pool is None:
            return {"pool_size": self.pool_size, "total_requests": 0, "avg_wait_time": 0.0,
                    "available_models": self.pool_size, "busy_models": 0, "loaded": False,
                    "n_workers_loaded": 0}
        s = PoolStats()
        with self._call(allow_closing=True) as pool:
            _check(lib.mp_pool_get_stats(pool, ctypes.byref(s)))
        out = {name: getattr(s, name) for name, _ in PoolStats._fields_
               if name not in ("worker_requests", "worker_busy_s", "wait_le", "_spare")}
        n = min(s.pool_size, len(s.worker_requests))
        out["worker_requests"] = list(s.worker_requests[:n])
        out["worker_busy_s"] = list(s.worker_busy_s[:n])
        # {upper bound s: waits <= it}, cumulative; float("inf") holds them all (= wait_count)
        out["wait_histogram"] = {lib.mp_pool_wait_bucket_s(i): s.wait_le[i] for i in range(len(s.wait_le))}
        out["wait_histogram"][float("inf")] = s.wait_count
        out["wait_warning"] = bool(s.wait_warning)
        out["loaded"] = True
        out["processor_instances"] = 1
        return out

    # ---- direct transcription --------------------------------------------------------------------------

    def _resample(self, s, from_rate, to_rate):
        out, n_out = c_float_p(), ctypes.c_size_t(0)
        _check(lib.mp_resample(s.ptr, s.n, int(from_rate), int(to_rate), ctypes.byref(out), ctypes.byref(n_out)))
        try:
            a = array.array("f", bytes((ctypes.c_float * n_out.value).from_address(
                ctypes.addressof(out.contents)))) if n_out.value else array.array("f")
        finally:
            _libc_free(out)
        return _samples.as_samples(a)

    def _request(self, beam=None, words=None, hotwords=None, lexicon=None, lm=None, lm_alpha=None, lm_beta=None,
                 timeout=None, chunk_length_s=None, stride_length_s=None, keep_logits=False):
        """(mp_request_config, objects to keep alive, lexicons to free after the call)."""
        req = lib.mp_request_default_config()
        keep, free_after = [], []
        want_beam = False
        req.timeout_ms = _timeout_ms(timeout)
        req.keep_logits = int(bool(keep_logits))
        if chunk_length_s is not None:
            req.chunk_length_s = float(chunk_length_s)
            req.stride_length_s = float(chunk_length_s) / 6.0
        if stride_length_s is not None:
            req.stride_length_s = float(stride_length_s)
        if hotwords:
            items = list(hotwords.items()) if isinstance(hotwords, dict) else [
                h if isinstance(h, (tuple, list)) else (h, 5.0) for h in hotwords]
            arr = (Hotword * len(items))()
            for i, (phrase, boost) in enumerate(items):
                b = phrase.encode("utf-8")
                keep.append(b)
                arr[i].phrase, arr[i].boost = b, float(boost)
            keep.append(arr)
            req.hotwords = ctypes.cast(arr, ctypes.POINTER(Hotword))
            req.n_hotwords = len(items)
            want_beam = True
        if lexicon is not None:
            if lexicon in ("model", True):
                req.use_model_lexicon = 1
            elif lexicon in ("none", False):
                req.use_model_lexicon = 0
            else:
                req.lexicon = self._cached(self._lex_cache, os.fspath(lexicon), self._load_lexicon)
                want_beam = True
        if lm is not None:
            req.lm = self._cached(self._lm_cache, os.fspath(lm), self._load_lm)
            want_beam = True
        if lm_alpha is not None:
            req.lm_alpha = float(lm_alpha)
        if lm_beta is not None:
            req.lm_beta = float(lm_beta)
        if words:
            ws = [w.encode("utf-8") for w in ([words] if isinstance(words, str) else words)]
            arr = (ctypes.c_char_p * len(ws))(*ws)
            lex = ctypes.c_void_p()
            _check(lib.mp_lexicon_from_words(self._model, arr, len(ws), ctypes.byref(lex)))
            free_after.append(lex)
            req.lexicon = lex
            want_beam = True
        if beam is None and want_beam:
            beam = 16  # these options act in beam search only (the server's rule)
        if beam:
            if not 0 < int(beam) <= 1024:
                raise ValueError("beam must be 0..1024 (0 = greedy)")
            req.decoder = 1
            req.beam_width = int(beam)
        return req, keep, free_after

    def _cached(self, cache, key, loader):
        with self._lock:
            h = cache.get(key)
        if h is None:
            h = loader(key)
            with self._lock:
                if key in cache:
                    lib.mp_lm_free(h) if cache is self._lm_cache else lib.mp_lexicon_free(h)
                    h = cache[key]
                else:
                    cache[key] = h
        return h

    def _load_lm(self, path):
        h = ctypes.c_void_p()
        _check(lib.mp_lm_load_arpa(path.encode(), ctypes.byref(h)))
        return h.value

    def _load_lexicon(self, path):
        h = ctypes.c_void_p()
        _check(lib.mp_lexicon_load(self._model, path.encode(), ctypes.byref(h)))
        return h.value

    def _run_samples(self, samples, sample_rate, decoding, fn):
        self._ensure()
        keep_logits = bool(decoding.get("keep_logits"))
        s = _samples.as_samples(samples)
        rate = int(sample_rate) if sample_rate else self._info.sample_rate
        req, keep, free_after = self._request(**decoding)
        res = ctypes.c_void_p()
        try:
            with self._call(allow_closing=True):
                fn(s, rate, ctypes.byref(req), ctypes.byref(res))
            return Result._take(res, keep_logits)
        finally:
            for lex in free_after:
                lib.mp_lexicon_free(lex)
            del keep

    def transcribe(self, audio, sample_rate=None, *, beam=None, words=None, hotwords=None, lexicon=None, lm=None,
                   lm_alpha=None, lm_beta=None, timeout=None, chunk_length_s=None, keep_logits=False,
                   channel=None, raw_format=None):
        """Transcribe a file path, an open binary file, or samples (numpy, array('f'/'h'), bytes of
        16-bit PCM, list of floats) at sample_rate (default: the model's, 16000 Hz). Leases a model
        for the call (per 20 s chunk for files). beam: width (None/0 greedy; words, hotwords, lm
        imply 16); words: the only words allowed; hotwords: {phrase: boost} or [phrase, ...];
        lexicon: "model" | "none" | a word-list file; lm: an ARPA file. Returns a Result."""
        decoding = dict(beam=beam, words=words, hotwords=hotwords, lexicon=lexicon, lm=lm, lm_alpha=lm_alpha,
                        lm_beta=lm_beta, timeout=timeout, chunk_length_s=chunk_length_s, keep_logits=keep_logits)
        if isinstance(audio, str) or hasattr(audio, "__fspath__"):
            return self._transcribe_file(os.fspath(audio), sample_rate, channel, raw_format, decoding)
        if hasattr(audio, "read"):
            data = audio.read()
            samples, rate = load_audio(data, sr=None, channel=channel, raw_format=raw_format,
                                       raw_rate=sample_rate)
            return self._run_samples(samples, rate, decoding, self._pool_transcribe)
        if raw_format not in (None, "s16le") or channel is not None:
            raise ValueError("raw_format and channel apply to files; samples are mono already")
        return self._run_samples(audio, sample_rate, decoding, self._pool_transcribe)

    def _run_on_worker(self, w, fn, *args):
        """A library call (returning mp_status) on worker w's thread (see _runner.py); raises on failure."""
        st, detail = self._threads.call(w, _with_detail, fn, *args)
        if st != errors.OK:
            raise _error(st, detail)

    def _pool_transcribe(self, s, rate, req, out):
        """mp_pool_transcribe() (acquire with the request's timeout, transcribe, release), the
        transcription on the granted worker's thread."""
        lease = ctypes.c_void_p()
        _check(lib.mp_pool_acquire(self._pool, req._obj.timeout_ms, ctypes.byref(lease)))
        try:
            self._run_on_worker(lib.mp_lease_worker(lease), lib.mp_lease_transcribe, lease, s.ptr, s.n, rate, req,
                                out)
        finally:
            lib.mp_lease_release(lease)

    def _transcribe_file(self, path, sample_rate, channel, raw_format, decoding):
        self._ensure()
        acfg = _audio_config(channel, raw_format, sample_rate)
        req, keep, free_after = self._request(**decoding)
        res = ctypes.c_void_p()
        try:
            with self._call() as pool:
                _check(lib.mp_pool_transcribe_file(pool, path.encode(), ctypes.byref(acfg), ctypes.byref(req),
                                                   ctypes.byref(res)))
            return Result._take(res, decoding.get("keep_logits"))
        finally:
            for lex in free_after:
                lib.mp_lexicon_free(lex)
            del keep

    def stream(self, sample_rate=8000, **decoding):
        """A live stream (mp_stream) at sample_rate: .feed(pcm), .partial(), .finish(). Each full chunk
        runs on a model leased for that chunk alone. Use it as a context manager or close() it."""
        return Stream(self, sample_rate, decoding)

    def live(self, sample_rate=8000, *, partial_interval=None, left_context=None, right_context=None,
             endpoint_silence=None, max_utterance=None, final_pass=None, final_skip_confidence=None,
             feature_cache=None, **decoding):
        """A live call (mp_live) at sample_rate: .feed(pcm) returns the utterances that ended (finals),
        .partial() the current one so far, .flush() ends it now, .finish() ends the call. Partial
        results every partial_interval seconds of audio (0.5), a final per utterance after
        endpoint_silence seconds of silence (0.6); times are seconds from the start of the call.
        Each step holds a model only while it computes. feature_cache=0 runs every step's window through
        the whole network instead of reusing the conv features of audio seen (docs/LIVE.md). Use it as a
        context manager or close() it."""
        opts = {"partial_interval_s": partial_interval, "left_context_s": left_context,
                "right_context_s": right_context, "endpoint_silence_s": endpoint_silence,
                "max_utterance_s": max_utterance, "final_pass": final_pass,
                "final_skip_confidence": final_skip_confidence, "feature_cache": feature_cache}
        return Live(self, sample_rate, {k: v for k, v in opts.items() if v is not None}, decoding)

    def __repr__(self):
        state = "closed" if self._closing else ("loaded" if self._pool is not None else "not loaded")
        src = f"arch={self.arch!r}" if self.arch else f"model_dir={self.model_dir!r}"
        return f"<modelpool.ModelPool pool_size={self.pool_size} {src} {state}>"


class _Session:
    """What Stream and Live share: the native handle (self._s, freed by _release), the word lists that
    must outlive it (self._free_after), closing, and the pool's registry of open sessions."""
    _what = "the session"

    def _release(self, s):
        raise NotImplementedError

    def _handle(self):
        if self._s is None:
            raise errors.MisuseError(self._what + " is closed", errors.MISUSE)
        return self._s

    def _free(self):
        with self._lock:
            if self._s is not None:
                self._release(self._s)
                self._s = None
            for lex in self._free_after:
                lib.mp_lexicon_free(lex)
            self._free_after = []

    def close(self):
        pool = self._pool
        with pool._lock:
            pool._streams.discard(self)
        self._free()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if self._s is not None and lib is not None:
                self.close()
        except Exception:
            pass


class Stream(_Session):
    """Audio pushed piece by piece (a call in progress). One thread at a time per stream."""
    _what = "the stream"

    def _release(self, s):
        lib.mp_stream_free(s)

    def __init__(self, pool, sample_rate, decoding):
        if decoding.get("keep_logits"):
            raise ValueError("streams do not keep logits")
        self._pool = pool
        self._lock = threading.Lock()
        self.sample_rate = int(sample_rate)
        pool._ensure()
        req, self._keep, self._free_after = pool._request(**decoding)
        s = ctypes.c_void_p()
        with pool._call() as p:
            _check(lib.mp_stream_create(p, self.sample_rate, ctypes.byref(req), ctypes.byref(s)))
        self._s = s
        with pool._lock:
            pool._streams.add(self)

    def feed(self, pcm):
        """Append mono samples at the stream's rate (any accepted input type; bytes = 16-bit PCM). May
        run chunks, blocking while it waits for a model."""
        s = _samples.as_samples(pcm)
        with self._lock, self._pool._call(allow_closing=True):
            _check(lib.mp_stream_write(self._handle(), s.ptr, s.n))

    write = feed

    def partial(self):
        """The transcript so far (chunks already run): a Result; the stream goes on."""
        res = ctypes.c_void_p()
        with self._lock, self._pool._call(allow_closing=True):
            _check(lib.mp_stream_partial(self._handle(), ctypes.byref(res)))
        return Result._take(res)

    def finish(self):
        """Run what is left and return the final Result. The stream takes no more audio."""
        res = ctypes.c_void_p()
        with self._lock, self._pool._call(allow_closing=True):
            _check(lib.mp_stream_finish(self._handle(), ctypes.byref(res)))
        return Result._take(res)


class Final(Result):
    """A final result of a live call: a Result, plus .start and .end, the utterance's span in the call (s)."""

    __slots__ = ("start", "end")


class Live(_Session):
    """A live call (ModelPool.live()): audio in pieces of any size, partial and final results as it
    is spoken. One thread at a time per call."""
    _what = "the live call"

    def _release(self, s):
        lib.mp_live_free(s)

    def __init__(self, pool, sample_rate, options, decoding):
        if decoding.get("keep_logits"):
            raise ValueError("live calls do not keep logits")
        self._pool = pool
        self._lock = threading.Lock()
        self.sample_rate = int(sample_rate)
        pool._ensure()
        cfg = lib.mp_live_default_config()
        for k, v in options.items():
            setattr(cfg, k, int(v) if k in ("final_pass", "feature_cache") else float(v))
        req, self._keep, self._free_after = pool._request(**decoding)
        s = ctypes.c_void_p()
        with pool._call() as p:
            _check(lib.mp_live_create(p, self.sample_rate, ctypes.byref(req), ctypes.byref(cfg), ctypes.byref(s)))
        self._s = s
        with pool._lock:
            pool._streams.add(self)

    def _pop(self):
        out = []
        while True:
            res, t0, t1 = ctypes.c_void_p(), ctypes.c_double(), ctypes.c_double()
            _check(lib.mp_live_pop_final(self._handle(), ctypes.byref(res), ctypes.byref(t0), ctypes.byref(t1)))
            if not res:
                return out
            f = Final._take(res)
            f.start, f.end = t0.value, t1.value
            out.append(f)

    def feed(self, pcm):
        """Append mono samples at the call's rate (any accepted input type; bytes = 16-bit PCM). Runs
        the steps that come due, blocking while it waits for a model. Returns the utterances that
        ended (a list of Final, usually empty)."""
        s = _samples.as_samples(pcm)
        ev = ctypes.c_int()
        with self._lock, self._pool._call(allow_closing=True):
            _check(lib.mp_live_write(self._handle(), s.ptr, s.n, ctypes.byref(ev)))
            return self._pop() if ev.value & LIVE_FINAL else []

    write = feed

    def partial(self):
        """The current utterance so far (a Result; its duration is the call time covered)."""
        res = ctypes.c_void_p()
        with self._lock, self._pool._call(allow_closing=True):
            _check(lib.mp_live_partial(self._handle(), ctypes.byref(res)))
        return Result._take(res)

    def flush(self):
        """End the current utterance now (vosk's reset): its final, if it holds speech, in a list."""
        with self._lock, self._pool._call(allow_closing=True):
            _check(lib.mp_live_flush(self._handle()))
            return self._pop()

    def finish(self):
        """End of the call: the last utterance's final (a list, empty after silence). No more audio."""
        with self._lock, self._pool._call(allow_closing=True):
            _check(lib.mp_live_finish(self._handle()))
            return self._pop()

    def stats(self):
        """mp_live_stats as a dict: audio_s, committed_s, compute_s, computed_audio_s, wait_s, steps,
        finals, buffered_s, endpoints_dropped, final_passes_skipped, feature_audio_s, cached_s,
        cache_resets."""
        st = LiveStats()
        with self._lock, self._pool._call(allow_closing=True):
            _check(lib.mp_live_get_stats(self._handle(), ctypes.byref(st)))
        return {k: getattr(st, k) for k, _ in st._fields_ if k != "_spare"}


def _audio_config(channel=None, raw_format=None, raw_rate=None, target_rate=None):
    cfg = lib.mp_audio_default_config()
    if raw_format not in _RAW_FORMATS:
        raise ValueError(f"raw_format={raw_format!r}: expected None, 's16le', 'mulaw' or 'alaw'")
    cfg.raw_format = _RAW_FORMATS[raw_format]
    if raw_rate:
        cfg.raw_rate = int(raw_rate)
    if channel is not None:
        cfg.channel = int(channel)
    if target_rate:
        cfg.target_rate = int(target_rate)
    return cfg


def load_audio(source, sr=16000, *, channel=None, raw_format=None, raw_rate=None):
    """Decode a file (path, or its bytes) to mono float samples at sr Hz, as librosa.load(wav, sr=16000)
    does: returns (samples, sr). WAV (PCM, G.711, GSM 06.10, ADPCM), FLAC, OGG, MP3, AMR-NB; soxr
    resampling at librosa's default quality. sr=None keeps 16000 (the library's default rate).
    Samples are a float32 numpy array when numpy is present, else array('f')."""
    cfg = _audio_config(channel, raw_format, raw_rate, sr)
    a = ctypes.c_void_p()
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        _check(lib.mp_audio_load_memory(data, len(data), ctypes.byref(cfg), ctypes.byref(a)))
    else:
        _check(lib.mp_audio_load_file(os.fspath(source).encode(), ctypes.byref(cfg), ctypes.byref(a)))
    try:
        n = ctypes.c_size_t(0)
        p = lib.mp_audio_samples(a, ctypes.byref(n))
        rate = lib.mp_audio_rate(a)
        if np is not None:
            x = _samples.empty_f32(n.value)
            if n.value:
                x[:] = np.ctypeslib.as_array(p, shape=(n.value,))
        else:
            x = array.array("f", bytes((ctypes.c_float * n.value).from_address(ctypes.addressof(p.contents)))) \
                if n.value else array.array("f")
    finally:
        lib.mp_audio_free(a)
    return x, rate


_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None


def _libc_free(p):
    _libc.free(ctypes.cast(p, ctypes.c_void_p))
