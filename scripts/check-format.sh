#!/usr/bin/env bash
# Fails when any tracked C++/CUDA/proto source differs from clang-format
# (Google style, .clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.h' '*.cc' '*.cu' '*.cuh' '*.proto')
clang-format --dry-run --Werror "${files[@]}"
echo "check-format: ${#files[@]} files clean"
