"""`pip install ./python` works offline with Debian's pip and setuptools (--no-build-isolation), and the
installed package finds the library (1) in the build tree of the checkout it was installed from, (2) in
its install prefix (<prefix>/lib next to the package's lib/python3.x), (3) through MODELPOOL_LIBRARY;
and the embedded model likewise. The package is installed from a copy, so the checkout stays clean."""
import glob
import os
import shutil
import subprocess
import sys

import pytest

from conftest import DIGITS, ROOT, SAMPLE

LIB = os.environ["MODELPOOL_LIBRARY"]
PROBE = ("import modelpool; p = modelpool.ModelPool(pool_size=1); "
         "print(modelpool.library_path()); print(modelpool.default_model_dir()); "
         f"print(p.transcribe({SAMPLE!r}, beam=16).text); p.close()")


def pip_install(src, prefix):
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--no-deps",
                        "--no-cache-dir", "--disable-pip-version-check", "--prefix", str(prefix), str(src)],
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    inits = glob.glob(os.path.join(str(prefix), "**", "modelpool", "__init__.py"), recursive=True)
    assert len(inits) == 1, inits
    return os.path.dirname(os.path.dirname(inits[0]))  # the site-packages directory


def probe(site, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPOOL_") and k != "PYTHONPATH"}
    env["PYTHONPATH"] = site
    env.update(env_extra or {})
    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, cwd="/", env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout.splitlines()


def copy_package(dst):
    shutil.copytree(os.path.join(ROOT, "python"), dst,
                    ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__", "_paths.py"))


@pytest.fixture(scope="module")
def pip_available():
    p = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip("python3-pip is not installed")


def test_build_tree_of_the_checkout(tmp_path, pip_available):
    repo = tmp_path / "repo"
    copy_package(repo / "python")
    (repo / "include").mkdir()
    shutil.copy(os.path.join(ROOT, "include", "modelpool.h"), repo / "include")
    (repo / "build").mkdir()
    os.symlink(LIB, repo / "build" / "libmodelpool.so")
    (repo / "models").mkdir()
    os.symlink(DIGITS, repo / "models" / "digits")
    site = pip_install(repo / "python", tmp_path / "inst")
    lib, model, text = probe(site)
    assert lib == str(repo / "build" / "libmodelpool.so")
    assert model == str(repo / "models" / "digits")
    assert text == open(os.path.join(ROOT, "samples", "phone-gsm.txt")).read().strip()
    assert not os.path.exists(os.path.join(ROOT, "python", "modelpool", "_paths.py"))


def test_install_prefix_and_env(tmp_path, pip_available):
    src = tmp_path / "src"
    copy_package(src)  # no checkout around it
    prefix = tmp_path / "prefix"
    site = pip_install(src, prefix)
    (prefix / "lib").mkdir(exist_ok=True)
    os.symlink(LIB, prefix / "lib" / "libmodelpool.so.0")
    (prefix / "share" / "modelpool" / "models").mkdir(parents=True)
    os.symlink(DIGITS, prefix / "share" / "modelpool" / "models" / "digits")
    lib, model, text = probe(site)
    assert lib == str(prefix / "lib" / "libmodelpool.so.0")
    assert model == str(prefix / "share" / "modelpool" / "models" / "digits")
    assert text
    # MODELPOOL_LIBRARY and MODELPOOL_MODEL win over the search
    lib, model, _ = probe(site, {"MODELPOOL_LIBRARY": LIB, "MODELPOOL_MODEL": DIGITS})
    assert lib == LIB and model == DIGITS
    # a wrong MODELPOOL_LIBRARY is a clear ImportError, not a silent fallback
    env = {"MODELPOOL_LIBRARY": str(tmp_path / "nope.so")}
    p = subprocess.run([sys.executable, "-c", "import modelpool"], capture_output=True, text=True, cwd="/",
                       env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": site, **env})
    assert p.returncode != 0 and "MODELPOOL_LIBRARY" in p.stderr and "ImportError" in p.stderr
