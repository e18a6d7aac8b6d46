"""Build hook: record the checkout the package is installed from (modelpool/_paths.py), so an installed
package still finds that checkout's build tree (build/libmodelpool.so) and embedded model. Everything
else is in pyproject.toml."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPyWithPaths(build_py):
    def run(self):
        super().run()
        root = os.path.dirname(HERE)
        if os.path.isfile(os.path.join(root, "include", "modelpool.h")):
            target = os.path.join(self.build_lib, "modelpool", "_paths.py")
            with open(target, "w", encoding="utf-8") as f:
                f.write('"""Written at install time by setup.py: the checkout this package came from."""\n')
                f.write(f"SOURCE_DIR = {root!r}\n")


setup(cmdclass={"build_py": BuildPyWithPaths})
