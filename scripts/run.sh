#!/usr/bin/env bash
# The main job: install, build and start peakknn-server on loopback with its
# defaults (gRPC 127.0.0.1:50051, metrics 127.0.0.1:9464/metrics, data in
# ./peakknn-data, backend auto = CUDA when a GPU is usable, else CPU).
# Extra arguments go to the server, e.g. scripts/run.sh --listen 0.0.0.0:50051
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh peakknn-server peakknn
exec build/server/peakknn-server "$@"
