"""Shared fixtures. ctest (tests/python.cmake) sets MODELPOOL_LIBRARY, MODELPOOL_CLI and MODELPOOL_ABI to
the build's targets and PYTHONPATH to python/; run by hand, the build tree's build/ is used:
    PYTHONPATH=python /usr/bin/python3 -m pytest python/tests
"""
import atexit
import json
import os
import shutil
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
os.environ.setdefault("MODELPOOL_LIBRARY", os.path.join(ROOT, "build", "libmodelpool.so"))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.join(ROOT, "python"), os.environ.get("PYTHONPATH")) if p)

REF = os.path.join(ROOT, "tests", "data", "ref")
DIGITS = os.path.join(ROOT, "models", "digits")


def _greedy_copy(src):
    """The model directory without decoding defaults (decoding.json, if the model has one): requests
    that ask for nothing decode greedily, as the processor/model steps do, whatever the model ships."""
    d = tempfile.mkdtemp(prefix="mp-digits-greedy-")
    for f in os.listdir(src):
        if f != "decoding.json":
            os.symlink(os.path.join(src, f), os.path.join(d, f))
    atexit.register(shutil.rmtree, d, True)
    return d


DIGITS_GREEDY = _greedy_copy(DIGITS)  # the embedded model, greedy unless a request says otherwise
SAMPLE = os.path.join(ROOT, "samples", "phone-gsm.wav")
SAMPLE_TEXT = open(os.path.join(ROOT, "samples", "phone-gsm.txt"), encoding="utf-8").read().strip()
CONFIGS = sorted(d for d in os.listdir(REF) if os.path.isfile(os.path.join(REF, d, "reference.json")))


def reference(config):
    with open(os.path.join(REF, config, "reference.json"), encoding="utf-8") as f:
        return json.load(f)


def ref_wav(name):
    return os.path.join(REF, "inputs", name + ".wav")


@pytest.fixture(scope="session")
def cli():
    path = os.environ.get("MODELPOOL_CLI", os.path.join(ROOT, "build", "modelpool"))
    if not os.access(path, os.X_OK):
        pytest.skip(f"no modelpool CLI at {path}")
    return path


@pytest.fixture
def digits_pool():
    import modelpool
    pool = modelpool.ModelPool(pool_size=2, model_dir=DIGITS_GREEDY)
    yield pool
    pool.close()
