#!/usr/bin/env bash
# Installs the Debian packages, configures and builds peakknn into ./build.
# Usage: scripts/build.sh [ninja targets...]   (no targets: everything)
# Env: BUILD_DIR (default build), BUILD_TYPE (default RelWithDebInfo),
#      CMAKE_ARGS (extra configure flags, e.g. -DPEAKKNN_CUDA=OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" ${CMAKE_ARGS:-} >/dev/null
# The build machines have 2 cores and CUDA/gRPC translation units are large.
ninja -C "$build_dir" -j"$(nproc)" "$@"
