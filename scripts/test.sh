#!/usr/bin/env bash
# Installs, builds (warnings are errors) and runs every test with ctest:
# unit, integration (real server processes on loopback, a real Prometheus),
# crash (kill -9) and fault-injection tests, and the offline checks of
# deploy/ (manifests, image, alerts: deploy/README.md). GPU tests skip,
# saying why, on a machine without a usable CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bash scripts/install-deploy-tools.sh
ctest --test-dir "${BUILD_DIR:-build}" -j"$(nproc)" --timeout 600 \
  --output-on-failure
