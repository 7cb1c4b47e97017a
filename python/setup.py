"""Builds the peakknn package; metadata is in pyproject.toml.

The one thing pyproject.toml cannot say: building the package generates
peakknn/v1/vector_search_pb2{,_grpc}.py from ../proto with
grpc_tools.protoc (build_stubs.py), into the build directory, so an
installed peakknn always carries modules generated from the .proto it was
built with.
"""

import pathlib
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import build_stubs  # noqa: E402  (next to this file, not installed)


class BuildPyWithStubs(build_py):
    def run(self):
        super().run()
        try:
            build_stubs.generate(pathlib.Path(self.build_lib))
        except RuntimeError as e:
            sys.exit(f"peakknn: {e}")


setup(cmdclass={"build_py": BuildPyWithStubs})
