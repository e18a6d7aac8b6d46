"""The ctypes structs in modelpool/_lib.py match the C header: every field at the compiler's offset, and
the known fields filling the C struct exactly (a field appended in C must be declared here too; until
then the spare tail keeps the library from writing past our buffers)."""
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
        known = cls._spare.offset
        align = ctypes.alignment(cls)
        assert (known + align - 1) // align * align == c["size"], f"{name}: C has fields we do not declare"
        assert ctypes.sizeof(cls) >= c["size"] + 128
    else:
        assert ctypes.sizeof(cls) == c["size"], name  # passed as an array: the size must be exact
