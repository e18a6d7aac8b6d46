"""Audio samples from whatever the caller has, as a float32 buffer the library can read in place.

Accepted: numpy arrays (float: as is; int16: / 32768), torch tensors (through numpy), array.array
('f', 'd' as is; 'h' / 32768), bytes / bytearray / memoryview of bytes (16-bit little-endian PCM, what
telephony gives: / 32768), and lists or tuples of numbers (as is, like HuggingFace's processor).
"""
import array
import ctypes
import mmap
import sys

from ._lib import c_float_p

try:
    import numpy as np
except ImportError:  # numpy is optional
    np = None

INT16_SCALE = 1.0 / 32768.0
_MMAP_BYTES = 256 * 1024  # arrays from this size up get their own pages (see empty_f32)


def empty_f32(n):
    """An uninitialized float32 numpy array of n samples. From 256 KiB up it lives in its own anonymous
    mapping, returned to the system when the array goes: allocated with malloc, a second of audio per
    request per thread would stay in glibc's per-thread arenas (30 caller threads, up to 8 arenas per
    core) and add tens of MB to the process's peak RSS."""
    if n * 4 < _MMAP_BYTES:
        return np.empty(n, dtype=np.float32)
    return np.frombuffer(mmap.mmap(-1, n * 4), dtype=np.float32)


class Samples:
    """A contiguous float32 buffer: .ptr (float *), .n (samples); keeps its storage alive."""

    __slots__ = ("ptr", "n", "_keep")

    def __init__(self, ptr, n, keep):
        self.ptr, self.n, self._keep = ptr, n, keep

    def tolist(self):
        return [self.ptr[i] for i in range(self.n)]

    def numpy(self):
        """The samples as a float32 numpy array (numpy must be present): the caller's own array when
        it already was one (not to be written to), else a view of this buffer."""
        keep = self._keep
        if isinstance(keep, np.ndarray) and keep.dtype == np.float32 and keep.shape == (self.n,):
            return keep
        if self.n == 0:
            return np.zeros(0, dtype=np.float32)
        return np.ctypeslib.as_array(self.ptr, shape=(self.n,))


def _from_float_array(a):
    """array('f') -> Samples without copying."""
    if len(a) == 0:
        return Samples(c_float_p(), 0, a)
    buf = (ctypes.c_float * len(a)).from_buffer(a)
    return Samples(ctypes.cast(buf, c_float_p), len(a), (a, buf))


def _int16_to_float(a):
    """array('h') -> array('f') scaled to [-1, 1)."""
    return array.array("f", [v * INT16_SCALE for v in a])


def _pcm_bytes(b):
    if len(b) % 2:
        raise ValueError(f"16-bit PCM bytes must have an even length, got {len(b)}")
    a = array.array("h")
    a.frombytes(bytes(b))
    if sys.byteorder == "big":
        a.byteswap()
    return a


def _is_torch(x):
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _numpy_samples(x):
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples (a 1-D array), got shape {tuple(x.shape)}")
    if x.dtype == np.int16:
        x = x.astype(np.float32) * np.float32(INT16_SCALE)
    elif x.dtype.kind == "f":
        x = np.ascontiguousarray(x, dtype=np.float32)
    else:
        raise TypeError(f"samples of dtype {x.dtype}: expected a float dtype or int16 PCM")
    return Samples(x.ctypes.data_as(c_float_p), int(x.shape[0]), x)


def as_samples(x):
    """Samples for any accepted input (see the module doc). Raises TypeError / ValueError."""
    if isinstance(x, Samples):
        return x
    if _is_torch(x):
        if np is None:
            x = array.array("f", x.detach().cpu().reshape(-1).tolist())
        else:
            x = x.detach().cpu().numpy()
    if np is not None and isinstance(x, np.ndarray):
        return _numpy_samples(x)
    if isinstance(x, array.array):
        if x.typecode == "f":
            return _from_float_array(x)
        if x.typecode == "d":
            return _from_float_array(array.array("f", x))
        if x.typecode == "h":
            return _from_float_array(_int16_to_float(x))
        raise TypeError(f"array('{x.typecode}'): expected 'f', 'd' (float samples) or 'h' (16-bit PCM)")
    if isinstance(x, memoryview) and x.format in ("f", "d", "h"):
        return as_samples(array.array(x.format, x.tobytes()))
    if isinstance(x, (bytes, bytearray, memoryview)):
        return _from_float_array(_int16_to_float(_pcm_bytes(x)))
    if isinstance(x, (list, tuple)):
        try:
            return _from_float_array(array.array("f", x))
        except TypeError:
            raise TypeError("a list of samples must hold numbers") from None
    if isinstance(x, str) or hasattr(x, "__fspath__"):
        raise TypeError("a path is not samples here: use ModelPool.transcribe(path) or modelpool.load_audio(path)")
    raise TypeError(f"cannot use {type(x).__name__} as audio samples: pass a numpy array, array('f'/'h'), "
                    "bytes of 16-bit PCM or a list of floats")


def is_sequence_of_rows(x):
    """True for a batch: a 2-D array or a list/tuple whose items are themselves sequences."""
    if np is not None and isinstance(x, np.ndarray):
        return x.ndim == 2
    if _is_torch(x):
        return x.dim() == 2
    if isinstance(x, (list, tuple)) and len(x) > 0:
        first = x[0]
        return not isinstance(first, (int, float)) and (
            isinstance(first, (list, tuple, array.array, bytes, bytearray, memoryview, Samples))
            or _is_torch(first) or (np is not None and isinstance(first, np.ndarray)))
    return False
