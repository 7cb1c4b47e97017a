#!/usr/bin/env bash
# Installs the Python client the way python/README.md tells users to, for
# the pytest run of ctest (tests/CMakeLists.txt, python_client_install):
# a virtual environment that sees Debian's python3-grpcio, -protobuf,
# -numpy, -pytest and -tqdm (--system-site-packages), and pip installing
# ./python from a copy of the source with no index (nothing is downloaded)
# and no build isolation (Debian's setuptools and grpc_tools build it;
# setup.py generates the protobuf modules from proto/).
#
#   install-into-venv.sh PYTHON SOURCE_DIR WORK_DIR
#
# WORK_DIR is recreated: WORK_DIR/venv is the environment. The build runs
# in WORK_DIR/src, a copy of SOURCE_DIR's python/ and proto/, so it never
# writes into the source tree and never reuses a stale build directory.
# The venv has no pip of its own (--without-pip saves ensurepip's time):
# the system's pip (python3-pip), run by the venv's interpreter, installs
# into the venv.
set -euo pipefail
python=$1
source_dir=$2
work=$3
rm -rf "$work"
mkdir -p "$work/src"
cp -r "$source_dir/python" "$source_dir/proto" "$work/src/"
rm -rf "$work/src/python/build" "$work/src/python/"*.egg-info
"$python" -m venv --without-pip --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --no-build-isolation \
  --no-index --disable-pip-version-check --root-user-action=ignore \
  "$work/src/python"
"$work/venv/bin/python" -c 'import peakknn; print("installed", peakknn.__file__)'
