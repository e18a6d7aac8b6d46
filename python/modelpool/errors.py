"""Exceptions carrying libmodelpool's status codes (mp_status) and the library's detail message.

Every exception raised for a failed library call is a ModelPoolError with .status (the mp_status number),
.code (its MP_ERR_* name) and .detail (mp_last_error() of the failing call). Each status has its own
subclass, which also derives from the closest built-in exception, so existing handlers keep working:
    except TimeoutError          catches PoolTimeoutError (no model became free in time)
    except MemoryError           catches OutOfMemoryError
    except OSError               catches LibraryIOError (a file could not be read)
    except ValueError            catches InvalidArgumentError, AudioFormatError, ModelFormatError, ...
"""
import builtins

OK = 0
INVALID_ARG = 1
NOMEM = 2
IO = 3
MODEL_FORMAT = 4
AUDIO_FORMAT = 5
QUEUE_FULL = 6
TIMEOUT = 7
CANCELLED = 8
SHUTDOWN = 9
MISUSE = 10
INTERNAL = 11
DECODER_FORMAT = 12

CODE_NAMES = {
    OK: "MP_OK",
    INVALID_ARG: "MP_ERR_INVALID_ARG",
    NOMEM: "MP_ERR_NOMEM",
    IO: "MP_ERR_IO",
    MODEL_FORMAT: "MP_ERR_MODEL_FORMAT",
    AUDIO_FORMAT: "MP_ERR_AUDIO_FORMAT",
    QUEUE_FULL: "MP_ERR_QUEUE_FULL",
    TIMEOUT: "MP_ERR_TIMEOUT",
    CANCELLED: "MP_ERR_CANCELLED",
    SHUTDOWN: "MP_ERR_SHUTDOWN",
    MISUSE: "MP_ERR_MISUSE",
    INTERNAL: "MP_ERR_INTERNAL",
    DECODER_FORMAT: "MP_ERR_DECODER_FORMAT",
}


class ModelPoolError(Exception):
    """A libmodelpool call failed. str() is "<strerror>: <detail>"."""

    status = INTERNAL

    def __init__(self, message, status=None, detail=""):
        super().__init__(message)
        if status is not None:
            self.status = status
        self.detail = detail

    @property
    def code(self):
        return CODE_NAMES.get(self.status, f"MP_ERR_{self.status}")


class InvalidArgumentError(ModelPoolError, ValueError):
    status = INVALID_ARG


class OutOfMemoryError(ModelPoolError, MemoryError):
    status = NOMEM


class LibraryIOError(ModelPoolError, OSError):
    status = IO

    def __init__(self, message, status=None, detail=""):
        ModelPoolError.__init__(self, message, status, detail)


class ModelFormatError(ModelPoolError, ValueError):
    status = MODEL_FORMAT


class AudioFormatError(ModelPoolError, ValueError):
    status = AUDIO_FORMAT


class QueueFullError(ModelPoolError):
    """The pool's wait queue is full (queue_capacity): retry later (the server answers 503)."""
    status = QUEUE_FULL


class PoolTimeoutError(ModelPoolError, builtins.TimeoutError):
    """No model became free within the timeout."""
    status = TIMEOUT

    def __init__(self, message, status=None, detail=""):
        ModelPoolError.__init__(self, message, status, detail)


class CancelledError(ModelPoolError):
    status = CANCELLED


class ShutdownError(ModelPoolError):
    """The pool is shutting down (close() was called) and takes no new work."""
    status = SHUTDOWN


class MisuseError(ModelPoolError, RuntimeError):
    """The API was used out of order: a model released twice or to another pool, a model called
    without being held, a finished stream written to."""
    status = MISUSE


class InternalError(ModelPoolError):
    status = INTERNAL


class DecoderFormatError(ModelPoolError, ValueError):
    """A lexicon, hotword or ARPA language model is malformed."""
    status = DECODER_FORMAT


_BY_STATUS = {
    INVALID_ARG: InvalidArgumentError,
    NOMEM: OutOfMemoryError,
    IO: LibraryIOError,
    MODEL_FORMAT: ModelFormatError,
    AUDIO_FORMAT: AudioFormatError,
    QUEUE_FULL: QueueFullError,
    TIMEOUT: PoolTimeoutError,
    CANCELLED: CancelledError,
    SHUTDOWN: ShutdownError,
    MISUSE: MisuseError,
    INTERNAL: InternalError,
    DECODER_FORMAT: DecoderFormatError,
}


def error_class(status):
    return _BY_STATUS.get(status, ModelPoolError)


def make_error(status, strerror, detail):
    """The exception for a status, its message "<strerror>: <detail>" (or the strerror alone)."""
    msg = f"{strerror}: {detail}" if detail else strerror
    return error_class(status)(msg, status, detail)
