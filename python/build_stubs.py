#!/usr/bin/env python3
"""Generates peakknn's Python protobuf and gRPC modules from proto/.

    python3 python/build_stubs.py OUT_DIR    # writes OUT_DIR/peakknn/v1/*.py
    python3 python/build_stubs.py --in-place # into python/ (a source
                                             # checkout; ignored by git)

setup.py runs it when the package is built (pip install), so the modules
always match the .proto they came from; they are never edited or checked
in. Uses grpc_tools.protoc (Debian: python3-grpc-tools) with the .proto
files under proto/ in the repository (--proto_dir to point elsewhere).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = REPOSITORY / "proto"
# The .proto files of the public API, relative to the proto directory; the
# modules land at the same relative path (peakknn/v1/vector_search_pb2.py),
# which is where the package imports them from.
PROTO_FILES = ("peakknn/v1/vector_search.proto",)


def generated_files(proto_file: str) -> list:
    """Relative paths of the modules generated from `proto_file`."""
    stem = proto_file[:-len(".proto")]
    return [f"{stem}_pb2.py", f"{stem}_pb2_grpc.py"]


def generate(out_dir: pathlib.Path, proto_dir: pathlib.Path = PROTO_DIR) -> list:
    """Writes the modules under out_dir; returns their paths.

    Raises RuntimeError naming what is missing or what protoc said.
    """
    try:
        from grpc_tools import protoc
    except ImportError:
        raise RuntimeError(
            "grpc_tools is not installed: apt-get install python3-grpc-tools"
        ) from None
    written = []
    for proto_file in PROTO_FILES:
        if not (proto_dir / proto_file).is_file():
            raise RuntimeError(
                f"{proto_dir / proto_file} not found: build the Python "
                "package from a peakknn repository checkout (python/ next "
                "to proto/)")
        out_dir.mkdir(parents=True, exist_ok=True)
        status = protoc.main([
            "grpc_tools.protoc", f"--proto_path={proto_dir}",
            f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
            str(proto_dir / proto_file)
        ])
        if status != 0:
            raise RuntimeError(f"grpc_tools.protoc failed on {proto_file} "
                               f"(exit status {status}; its message is above)")
        written += [out_dir / f for f in generated_files(proto_file)]
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("out_dir", nargs="?", type=pathlib.Path)
    where.add_argument("--in-place", action="store_true",
                       help="write into python/ (next to this script)")
    parser.add_argument("--proto_dir", type=pathlib.Path, default=PROTO_DIR)
    args = parser.parse_args()
    out_dir = pathlib.Path(__file__).resolve().parent if args.in_place \
        else args.out_dir
    try:
        for path in generate(out_dir, args.proto_dir):
            print(path)
    except RuntimeError as e:
        print(f"build_stubs: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
