#!/usr/bin/python3
"""soxr_ref.py - independent reference for modelpool's resampling: what librosa.load(sr=...) does.

librosa.resample(res_type="soxr_hq") (librosa 0.10+) calls python-soxr's resample(x, orig, target,
quality="HQ"), which runs libsoxr with soxr_quality_spec(SOXR_HQ, 0), float32 in/out, default
runtime (python-soxr src/soxr_ext.cpp), then fixes the length to int(np.ceil(n * target / orig))
(librosa util.fix_length: zero-pad or cut). There is no python3-soxr in Debian 12, so this calls
libsoxr.so.0 through ctypes with soxr_oneshot() - a different code path from the library's
streaming soxr_process() calls - and applies the same length rule.

Usage: soxr_ref.py IN.f32 IN_RATE OUT_RATE OUT.f32   (raw native float32 mono)
"""
import ctypes
import sys

import numpy as np

SOXR_HQ = 4  # soxr.h: SOXR_HQ = SOXR_20_BITQ = 4


class QualitySpec(ctypes.Structure):  # struct soxr_quality_spec (soxr.h)
    _fields_ = [("precision", ctypes.c_double), ("phase_response", ctypes.c_double),
                ("passband_end", ctypes.c_double), ("stopband_begin", ctypes.c_double),
                ("e", ctypes.c_void_p), ("flags", ctypes.c_ulong)]


def resample(x, in_rate, out_rate):
    lib = ctypes.CDLL("libsoxr.so.0")
    lib.soxr_quality_spec.restype = QualitySpec
    lib.soxr_quality_spec.argtypes = [ctypes.c_ulong, ctypes.c_ulong]
    lib.soxr_oneshot.restype = ctypes.c_char_p
    lib.soxr_oneshot.argtypes = [ctypes.c_double, ctypes.c_double, ctypes.c_uint,
                                 ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t),
                                 ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t),
                                 ctypes.c_void_p, ctypes.POINTER(QualitySpec), ctypes.c_void_p]
    q = lib.soxr_quality_spec(SOXR_HQ, 0)
    x = np.ascontiguousarray(x, dtype=np.float32)
    olen = int(len(x) * out_rate / in_rate) + 1  # python-soxr's buffer size
    y = np.zeros(olen, dtype=np.float32)
    odone = ctypes.c_size_t(0)
    err = lib.soxr_oneshot(float(in_rate), float(out_rate), 1, x.ctypes.data, len(x), None,
                           y.ctypes.data, olen, ctypes.byref(odone), None, ctypes.byref(q), None)
    if err:
        raise RuntimeError(err.decode())
    y = y[:odone.value]
    n = int(np.ceil(len(x) * (float(out_rate) / in_rate)))  # librosa.resample + fix_length
    if len(y) >= n:
        return y[:n]
    return np.concatenate([y, np.zeros(n - len(y), dtype=np.float32)])


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    x = np.fromfile(sys.argv[1], dtype=np.float32)
    resample(x, int(sys.argv[2]), int(sys.argv[3])).tofile(sys.argv[4])
