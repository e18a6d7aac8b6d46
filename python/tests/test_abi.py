"""The ctypes structs in modelpool/_lib.py match the C header: every declared field at the compiler's
offset, and the whole C struct (fields appended later included) inside our struct with its spare tail,
so the library never writes past our buffers; mp_hotword, passed as an array, exactly."""
import ctypes
import json
import os
import subprocess

import pytest

from modelpool import _lib


@pytest.fixture(scope="module")
def c_layout():
    exe = os.environ.get("MODELPOOL_ABI")
    if not exe:
        from conftest import ROOT
        exe = os.path.join(ROOT, "build", "tests", "test-python-abi")
    if not os.access(exe, os.X_OK):
        pytest.skip(f"no {exe} (built by tests/python.cmake)")
    return json.loads(subprocess.run([exe], capture_output=True, text=True, check=True, timeout=30).stdout)


@pytest.mark.parametrize("name", sorted(_lib.ABI_STRUCTS))
def test_struct_layout(c_layout, name):
    cls = _lib.ABI_STRUCTS[name]
    c = c_layout[name]
    fields = [f for f, _ in cls._fields_ if f != "_spare"]
    assert fields == list(c["fields"]), f"{name}: fields differ from the header's"
    for f in fields:
        assert getattr(cls, f).offset == c["fields"][f], f"{name}.{f}"
    if "_spare" in dict(cls._fields_):
        # Fields appended in C later land in the spare tail: the library's defaults travel through
        # it untouched (configs come from mp_*_default_config()), so only its size must suffice.
        known = cls._spare.offset
        assert known <= c["size"] <= ctypes.sizeof(cls) - 64, f"{name}: C size {c['size']}, ours {known}+spare"
    else:
        assert ctypes.sizeof(cls) == c["size"], name  # passed as an array: the size must be exact


def test_array_lengths(c_layout):
    assert c_layout["constants"] == {"MP_STATS_MAX_WORKERS": _lib.STATS_MAX_WORKERS,
                                     "MP_WAIT_BUCKETS": _lib.WAIT_BUCKETS}
