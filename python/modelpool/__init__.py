"""modelpool: speech-to-text for many telephone lines, with the original ModelPool design's API.

    from modelpool import ModelPool
    pool = ModelPool(pool_size=4)                      # lazy: loads on first use
    with pool.get_model_context() as (processor, model, device):
        inputs = processor(speech, sampling_rate=16000, return_tensors="np")
        logits = model(inputs.input_values).logits     # [batch, frames, vocab]
        text = processor.batch_decode(logits.argmax(-1))[0]
    print(pool.get_statistics())
    print(pool.transcribe("call.wav", beam=16).text)   # or all of it in one call

A thin ctypes layer over libmodelpool (include/modelpool.h): every call releases the GIL, so Python
threads run the engine in parallel. The library is found through MODELPOOL_LIBRARY, next to this package,
in its install prefix, in the build tree of the checkout it came from, or on the system's library path.
"""
import atexit
import logging
import os

from . import errors
from ._lib import LOG_FN, lib, source_dirs
from .errors import (AudioFormatError, CancelledError, DecoderFormatError, InternalError, InvalidArgumentError,
                     LibraryIOError, MisuseError, ModelFormatError, ModelPoolError, OutOfMemoryError,
                     PoolTimeoutError, QueueFullError, ShutdownError)
from ._features import BatchFeature, Logits, ModelOutput
from .pool import Final, Live, Model, ModelPool, Processor, Result, Stream, Word, load_audio

__version__ = "0.1.0"

__all__ = ["ModelPool", "Model", "Processor", "Result", "Word", "Stream", "Live", "Final", "BatchFeature",
           "ModelOutput", "Logits", "load_audio", "library_version", "library_path", "default_model_dir", "errors", "ModelPoolError",
           "InvalidArgumentError", "OutOfMemoryError", "LibraryIOError", "ModelFormatError", "AudioFormatError",
           "QueueFullError", "PoolTimeoutError", "CancelledError", "ShutdownError", "MisuseError", "InternalError",
           "DecoderFormatError"]


def library_version():
    """mp_version() of the library actually loaded."""
    return lib.mp_version().decode()


def library_path():
    """The libmodelpool file this package loaded."""
    return lib._modelpool_path


def default_model_dir():
    """The model ModelPool() uses without model_dir: MODELPOOL_MODEL, else the embedded digits model
    installed with the library (<prefix>/share/modelpool/models/digits) or in the checkout."""
    env = os.environ.get("MODELPOOL_MODEL")
    if env:
        return env
    libdir = os.path.dirname(os.path.abspath(lib._modelpool_path)) if os.path.sep in lib._modelpool_path else None
    places = []
    if libdir:
        prefix = os.path.dirname(libdir)
        places += [os.path.join(prefix, "share", "modelpool", "models", "digits"),
                   os.path.join(os.path.dirname(prefix), "share", "modelpool", "models", "digits"),  # lib/<arch>
                   os.path.join(prefix, "models", "digits")]  # build/ inside the checkout
    places += [os.path.join(d, "models", "digits") for d in source_dirs()]
    places += ["/usr/local/share/modelpool/models/digits", "/usr/share/modelpool/models/digits"]
    for p in places:
        if os.path.isfile(os.path.join(p, "config.json")):
            return p
    raise errors.LibraryIOError("no default model found (looked in " + ", ".join(dict.fromkeys(places)) +
                                "): pass model_dir= or set MODELPOOL_MODEL", errors.IO)


# The library never prints; its messages (stuck leases, loading notes) go to logging.getLogger("modelpool").
_log = logging.getLogger("modelpool")
_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}


@LOG_FN
def _on_log(level, message, user_data):
    _log.log(_LEVELS.get(level, logging.INFO), "%s", (message or b"").decode("utf-8", "replace"))


lib.mp_set_log_callback(_on_log, None)
# Clear it before the interpreter goes away: a library thread must not call into a dead interpreter.
atexit.register(lib.mp_set_log_callback, LOG_FN(), None)
