"""The generated protobuf/gRPC modules are what proto/ generates today:
never hand-edited, never stale."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess

import pytest

import peakknn
import peakknn.v1

PYTHON_DIR = pathlib.Path(__file__).resolve().parents[1]


def load_build_stubs():
    spec = importlib.util.spec_from_file_location(
        "build_stubs", PYTHON_DIR / "build_stubs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_imported_stubs_equal_a_fresh_generation(tmp_path):
    fresh = load_build_stubs().generate(tmp_path)
    assert len(fresh) == 2
    package_dir = pathlib.Path(peakknn.v1.__file__).parent
    for path in fresh:
        relative = path.relative_to(tmp_path / "peakknn" / "v1")
        imported = package_dir / relative
        assert imported.read_bytes() == path.read_bytes(), (
            f"{imported} differs from what {relative} generates from proto/ "
            "now: reinstall the package (pip install ./python)")


def test_ctest_runs_the_installed_package():
    # ctest installs python/ into a virtual environment first
    # (install-into-venv.sh) and sets PEAKKNN_TEST_INSTALLED=1: the tests
    # must then import that installation, not the source tree.
    if os.environ.get("PEAKKNN_TEST_INSTALLED") != "1":
        pytest.skip("not run by ctest (PEAKKNN_TEST_INSTALLED is not 1)")
    assert PYTHON_DIR not in pathlib.Path(peakknn.__file__).resolve().parents


def test_no_generated_module_is_checked_in():
    repository = PYTHON_DIR.parent
    if not (repository / ".git").exists():
        pytest.skip(f"{repository} is not a git checkout")
    tracked = subprocess.run(
        ["git", "-C", str(repository), "ls-files", "python"], check=True,
        capture_output=True, text=True).stdout.split()
    generated = [p for p in tracked if p.endswith(("_pb2.py", "_pb2_grpc.py"))]
    assert not generated, f"generated modules checked in: {generated}"


def test_generation_fails_clearly_without_the_proto(tmp_path):
    with pytest.raises(RuntimeError, match="vector_search.proto not found"):
        load_build_stubs().generate(tmp_path / "out", tmp_path / "no-proto")
