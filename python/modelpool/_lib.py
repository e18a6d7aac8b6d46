"""ctypes declarations of libmodelpool's public API (include/modelpool.h) and the search for the library.

Every foreign call goes through ctypes.CDLL, which releases the GIL for the duration of the call: the
engine runs in parallel with other Python threads.

Structs the library fills or reads (configs, statistics, model info, words) carry a spare tail: a field
appended to the C struct later (the header appends, never reorders) lands there instead of past the end
of our buffer, and since configs start from mp_*_default_config() its default travels through untouched.
mp_hotword is the exception (passed as an array, its size must be exact). tests/test-python-abi.c prints
the compiler's offsets and sizes; python/tests/test_abi.py compares them with these declarations.
"""
import ctypes
import glob
import os
import sys

_SPARE = 256  # bytes reserved after the known fields of caller-allocated structs

c_float_p = ctypes.POINTER(ctypes.c_float)


class ModelInfo(ctypes.Structure):
    _fields_ = [
        ("architecture", ctypes.c_char_p),
        ("dtype", ctypes.c_char_p),
        ("path", ctypes.c_char_p),
        ("n_params", ctypes.c_uint64),
        ("weight_bytes", ctypes.c_uint64),
        ("vocab_size", ctypes.c_int),
        ("hidden_size", ctypes.c_int),
        ("n_layers", ctypes.c_int),
        ("n_heads", ctypes.c_int),
        ("intermediate_size", ctypes.c_int),
        ("n_conv_layers", ctypes.c_int),
        ("frame_stride", ctypes.c_int),
        ("receptive_field", ctypes.c_int),
        ("sample_rate", ctypes.c_int),
        ("stable_layer_norm", ctypes.c_int),
        ("group_norm", ctypes.c_int),
        ("has_lexicon", ctypes.c_int),
        ("_spare", ctypes.c_char * _SPARE),
    ]


class ModelConfig(ctypes.Structure):
    # Returned by value: no spare tail, the size must match exactly (tests/test-python-abi.c).
    _fields_ = [("use_mmap", ctypes.c_int), ("language", ctypes.c_char_p), ("dtype", ctypes.c_int)]


DTYPES = {"fp32": 0, "int8": 1}  # mp_dtype


class Hotword(ctypes.Structure):
    _fields_ = [("phrase", ctypes.c_char_p), ("boost", ctypes.c_float)]


PROGRESS_FN = ctypes.CFUNCTYPE(None, ctypes.c_double, ctypes.c_void_p)


class RequestConfig(ctypes.Structure):
    _fields_ = [
        ("decoder", ctypes.c_int),
        ("beam_width", ctypes.c_int),
        ("lexicon", ctypes.c_void_p),
        ("use_model_lexicon", ctypes.c_int),
        ("hotwords", ctypes.POINTER(Hotword)),
        ("n_hotwords", ctypes.c_size_t),
        ("lm", ctypes.c_void_p),
        ("lm_alpha", ctypes.c_float),
        ("lm_beta", ctypes.c_float),
        ("lm_unk_score", ctypes.c_float),
        ("timeout_ms", ctypes.c_int),
        ("keep_logits", ctypes.c_int),
        ("chunk_length_s", ctypes.c_double),
        ("stride_length_s", ctypes.c_double),
        ("progress_fn", ctypes.c_void_p),
        ("progress_user_data", ctypes.c_void_p),
        ("_spare", ctypes.c_char * _SPARE),
    ]


class Word(ctypes.Structure):
    _fields_ = [
        ("word", ctypes.c_char_p),
        ("start_s", ctypes.c_double),
        ("end_s", ctypes.c_double),
        ("confidence", ctypes.c_float),
        ("_spare", ctypes.c_char * _SPARE),
    ]


class AudioConfig(ctypes.Structure):
    _fields_ = [
        ("raw_format", ctypes.c_int),
        ("raw_rate", ctypes.c_int),
        ("raw_channels", ctypes.c_int),
        ("channel", ctypes.c_int),
        ("target_rate", ctypes.c_int),
        ("max_duration_s", ctypes.c_double),
        ("_spare", ctypes.c_char * _SPARE),
    ]


class PoolConfig(ctypes.Structure):
    _fields_ = [
        ("n_workers", ctypes.c_int),
        ("queue_capacity", ctypes.c_int),
        ("default_timeout_ms", ctypes.c_int),
        ("preload", ctypes.c_int),
        ("n_threads_per_worker", ctypes.c_int),
        ("stuck_lease_s", ctypes.c_double),
        ("wait_warning_s", ctypes.c_double),
        ("weight_copies", ctypes.c_int),
        ("max_scratch_bytes", ctypes.c_size_t),
        ("_spare", ctypes.c_char * _SPARE),
    ]


STATS_MAX_WORKERS = 256
WAIT_BUCKETS = 14  # MP_WAIT_BUCKETS


class PoolStats(ctypes.Structure):
    _fields_ = [
        ("pool_size", ctypes.c_int),
        ("total_requests", ctypes.c_uint64),
        ("avg_wait_time", ctypes.c_double),
        ("available_models", ctypes.c_int),
        ("busy_models", ctypes.c_int),
        ("max_wait_time", ctypes.c_double),
        ("wait_p50", ctypes.c_double),
        ("wait_p95", ctypes.c_double),
        ("wait_p99", ctypes.c_double),
        ("service_p50", ctypes.c_double),
        ("service_p95", ctypes.c_double),
        ("service_p99", ctypes.c_double),
        ("queue_depth", ctypes.c_int),
        ("completed", ctypes.c_uint64),
        ("failed", ctypes.c_uint64),
        ("rejected", ctypes.c_uint64),
        ("timed_out", ctypes.c_uint64),
        ("stuck_leases", ctypes.c_uint64),
        ("stuck_now", ctypes.c_int),
        ("audio_seconds", ctypes.c_double),
        ("busy_seconds", ctypes.c_double),
        ("real_time_factor", ctypes.c_double),
        ("uptime_s", ctypes.c_double),
        ("wait_warning", ctypes.c_int),
        ("weight_bytes", ctypes.c_uint64),
        ("scratch_bytes", ctypes.c_uint64),
        ("n_workers_loaded", ctypes.c_int),
        ("worker_requests", ctypes.c_uint64 * STATS_MAX_WORKERS),
        ("worker_busy_s", ctypes.c_double * STATS_MAX_WORKERS),
        ("wait_le", ctypes.c_uint64 * WAIT_BUCKETS),
        ("wait_count", ctypes.c_uint64),
        ("wait_sum_s", ctypes.c_double),
        ("_spare", ctypes.c_char * _SPARE),
    ]


class LiveConfig(ctypes.Structure):
    _fields_ = [
        ("partial_interval_s", ctypes.c_double),
        ("left_context_s", ctypes.c_double),
        ("right_context_s", ctypes.c_double),
        ("endpoint_silence_s", ctypes.c_double),
        ("max_utterance_s", ctypes.c_double),
        ("final_pass", ctypes.c_int),
        ("final_skip_confidence", ctypes.c_double),
        ("feature_cache", ctypes.c_int),
        ("_spare", ctypes.c_char * _SPARE),
    ]


class LiveStats(ctypes.Structure):
    _fields_ = [
        ("audio_s", ctypes.c_double),
        ("committed_s", ctypes.c_double),
        ("compute_s", ctypes.c_double),
        ("computed_audio_s", ctypes.c_double),
        ("wait_s", ctypes.c_double),
        ("steps", ctypes.c_uint64),
        ("finals", ctypes.c_uint64),
        ("buffered_s", ctypes.c_double),
        ("endpoints_dropped", ctypes.c_uint64),
        ("final_passes_skipped", ctypes.c_uint64),
        ("feature_audio_s", ctypes.c_double),
        ("cached_s", ctypes.c_double),
        ("cache_resets", ctypes.c_uint64),
        ("_spare", ctypes.c_char * _SPARE),
    ]


LIVE_STEP, LIVE_FINAL = 1, 2  # MP_LIVE_STEP, MP_LIVE_FINAL

# Structs checked against C by tests/test-python-abi.c: name -> (ctypes class, C type name).
ABI_STRUCTS = {
    "mp_model_info": ModelInfo,
    "mp_model_config": ModelConfig,
    "mp_hotword": Hotword,
    "mp_request_config": RequestConfig,
    "mp_word": Word,
    "mp_audio_config": AudioConfig,
    "mp_pool_config": PoolConfig,
    "mp_pool_stats": PoolStats,
    "mp_live_config": LiveConfig,
    "mp_live_stats": LiveStats,
}

LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

_vp = ctypes.c_void_p
_pp = ctypes.POINTER(ctypes.c_void_p)
_int = ctypes.c_int
_size = ctypes.c_size_t

# name: (restype, argtypes)
_PROTOTYPES = {
    "mp_version": (ctypes.c_char_p, []),
    "mp_strerror": (ctypes.c_char_p, [_int]),
    "mp_last_error": (ctypes.c_char_p, []),
    "mp_set_log_callback": (None, [LOG_FN, _vp]),
    "mp_model_default_config": (ModelConfig, []),
    "mp_model_load": (_int, [ctypes.c_char_p, ctypes.POINTER(ModelConfig), _pp]),
    "mp_model_create_random": (_int, [ctypes.c_char_p, ctypes.c_uint64, _pp]),
    "mp_model_free": (None, [_vp]),
    "mp_model_get_info": (_int, [_vp, ctypes.POINTER(ModelInfo)]),
    "mp_model_token": (ctypes.c_char_p, [_vp, _int]),
    "mp_lexicon_load": (_int, [_vp, ctypes.c_char_p, _pp]),
    "mp_lexicon_from_words": (_int, [_vp, ctypes.POINTER(ctypes.c_char_p), _size, _pp]),
    "mp_lexicon_free": (None, [_vp]),
    "mp_lm_load_arpa": (_int, [ctypes.c_char_p, _pp]),
    "mp_lm_free": (None, [_vp]),
    "mp_request_default_config": (RequestConfig, []),
    "mp_result_text": (ctypes.c_char_p, [_vp]),
    "mp_result_n_words": (_size, [_vp]),
    "mp_result_word": (_int, [_vp, _size, ctypes.POINTER(Word)]),
    "mp_result_duration_s": (ctypes.c_double, [_vp]),
    "mp_result_logits": (c_float_p, [_vp, ctypes.POINTER(_int), ctypes.POINTER(_int)]),
    "mp_result_free": (None, [_vp]),
    "mp_audio_default_config": (AudioConfig, []),
    "mp_audio_load_file": (_int, [ctypes.c_char_p, ctypes.POINTER(AudioConfig), _pp]),
    "mp_audio_load_memory": (_int, [ctypes.c_char_p, _size, ctypes.POINTER(AudioConfig), _pp]),
    "mp_audio_samples": (c_float_p, [_vp, ctypes.POINTER(_size)]),
    "mp_audio_rate": (_int, [_vp]),
    "mp_audio_source": (ctypes.c_char_p, [_vp]),
    "mp_audio_free": (None, [_vp]),
    "mp_resample": (_int, [c_float_p, _size, _int, _int, ctypes.POINTER(c_float_p), ctypes.POINTER(_size)]),
    "mp_pool_default_config": (PoolConfig, []),
    "mp_pool_create": (_int, [_vp, ctypes.POINTER(PoolConfig), _pp]),
    "mp_pool_acquire": (_int, [_vp, _int, _pp]),
    "mp_lease_release": (_int, [_vp]),
    "mp_lease_worker": (_int, [_vp]),
    "mp_lease_transcribe": (_int, [_vp, c_float_p, _size, _int, ctypes.POINTER(RequestConfig), _pp]),
    "mp_lease_forward": (_int, [_vp, c_float_p, _size, _pp]),
    "mp_pool_transcribe": (_int, [_vp, c_float_p, _size, _int, ctypes.POINTER(RequestConfig), _pp]),
    "mp_pool_shutdown": (_int, [_vp, _int]),
    "mp_pool_free": (None, [_vp]),
    "mp_stream_create": (_int, [_vp, _int, ctypes.POINTER(RequestConfig), _pp]),
    "mp_stream_write": (_int, [_vp, c_float_p, _size]),
    "mp_stream_partial": (_int, [_vp, _pp]),
    "mp_stream_finish": (_int, [_vp, _pp]),
    "mp_stream_free": (None, [_vp]),
    "mp_live_default_config": (LiveConfig, []),
    "mp_live_create": (_int, [_vp, _int, ctypes.POINTER(RequestConfig), ctypes.POINTER(LiveConfig), _pp]),
    "mp_live_write": (_int, [_vp, c_float_p, _size, ctypes.POINTER(_int)]),
    "mp_live_pop_final": (_int, [_vp, _pp, ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double)]),
    "mp_live_partial": (_int, [_vp, _pp]),
    "mp_live_flush": (_int, [_vp]),
    "mp_live_finish": (_int, [_vp]),
    "mp_live_get_stats": (_int, [_vp, ctypes.POINTER(LiveStats)]),
    "mp_live_free": (None, [_vp]),
    "mp_pool_transcribe_file": (_int, [_vp, ctypes.c_char_p, ctypes.POINTER(AudioConfig),
                                       ctypes.POINTER(RequestConfig), _pp]),
    "mp_pool_get_stats": (_int, [_vp, ctypes.POINTER(PoolStats)]),
    "mp_pool_wait_bucket_s": (ctypes.c_double, [_int]),
}

_REQUIRED = [n for n, (_, args) in _PROTOTYPES.items() if args is not None]


def _package_dir():
    return os.path.dirname(os.path.abspath(__file__))


def source_dirs():
    """Checkouts this package may belong to: the one it was installed from (recorded at build time)
    and the one it sits in (python/modelpool inside the repository)."""
    dirs = []
    try:
        from . import _paths  # written by setup.py at install time
        if getattr(_paths, "SOURCE_DIR", None):
            dirs.append(_paths.SOURCE_DIR)
    except ImportError:
        pass
    dirs.append(os.path.dirname(os.path.dirname(_package_dir())))
    return [d for d in dirs if os.path.isfile(os.path.join(d, "include", "modelpool.h"))]


def _candidates():
    """Places to look for libmodelpool, best first (MODELPOOL_LIBRARY is handled by the caller)."""
    here = _package_dir()
    names = ("libmodelpool.so", "libmodelpool.so.0")
    for n in names:  # shipped inside the package
        yield os.path.join(here, n)
    # An installed prefix: <prefix>/lib/python3/dist-packages/modelpool -> <prefix>/lib[64|/<multiarch>]
    multiarch = getattr(sys.implementation, "_multiarch", "") or ""
    d = here
    for _ in range(5):
        d = os.path.dirname(d)
        for sub in ("lib", "lib64", os.path.join("lib", multiarch) if multiarch else None):
            if sub:
                for n in names:
                    yield os.path.join(d, sub, n)
    # The build tree of the checkout: build/ first, then other build directories.
    for src in source_dirs():
        for b in [os.path.join(src, "build")] + sorted(glob.glob(os.path.join(src, "build*"))):
            yield os.path.join(b, "libmodelpool.so")
    # Standard library paths (ldconfig cache, LD_LIBRARY_PATH). ctypes.util is imported only when
    # needed: it pulls in subprocess and friends (~2 MB of RSS).
    import ctypes.util
    found = ctypes.util.find_library("modelpool")
    if found:
        yield found
    yield "libmodelpool.so.0"


def _declare(lib):
    for name, (res, args) in _PROTOTYPES.items():
        if args is None:
            continue
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args


def load():
    """Load and declare the library. MODELPOOL_LIBRARY (a path) wins over every search."""
    env = os.environ.get("MODELPOOL_LIBRARY")
    tried = []
    paths = [env] if env else list(dict.fromkeys(_candidates()))
    for p in paths:
        if os.path.sep in p and not os.path.exists(p):
            continue
        try:
            lib = ctypes.CDLL(p)
        except OSError as e:
            tried.append(f"{p}: {e}")
            continue
        missing = [n for n in _REQUIRED if not hasattr(lib, n)]
        if missing:
            tried.append(f"{p}: lacks {', '.join(missing[:3])} (an older libmodelpool?)")
            continue
        _declare(lib)
        lib._modelpool_path = p
        return lib
    where = "MODELPOOL_LIBRARY=" + env if env else "the package, its install prefix, the build tree and system paths"
    detail = ("; ".join(tried[:4])) if tried else "not found"
    raise ImportError(f"modelpool: cannot load libmodelpool.so from {where}: {detail}. "
                      "Build it (cmake --build build) or set MODELPOOL_LIBRARY to its path.")


lib = load()
