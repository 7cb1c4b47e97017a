#!/bin/bash
# The streaming-insert bar of issue 4 in one command: starts peakknn-server
# (--durability=fsync, a fresh data directory, a free loopback port), runs
# peakknn-loadgen insert mode against it (1M x 128 f32 by default, batches
# of 1024, for 1, 2 and 4 streams, each compared with the in-process engine
# fed the same way in the same run, on the same disk), stops the server and
# removes the directory.
#
#   bench/insert_ratio.sh [BUILD_DIR] [extra peakknn-loadgen flags...]
#
# Later flags win, e.g. bench/insert_ratio.sh build --rows=200000
# --streams=1,2 --repeats=5. Needs: ninja -C BUILD_DIR peakknn-server
# peakknn-loadgen. TMPDIR picks the disk (default /tmp).
set -euo pipefail
build=${1:-build}
shift || true
dir=$(mktemp -d "${TMPDIR:-/tmp}/peakknn-insert-ratio-XXXXXX")
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
"$build/server/peakknn-server" --listen=127.0.0.1:0 --metrics_listen= \
  --port_file="$dir/port" --data_dir="$dir/data" --durability=fsync \
  2>"$dir/server.log" &
server_pid=$!
for _ in $(seq 100); do
  [[ -s "$dir/port" ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$dir/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
port=$(head -n 1 "$dir/port")
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/peakknn-loadgen" --mode=insert --server="127.0.0.1:$port" \
  --rows=1000000 --dim=128 --batch_rows=1024 --window=16 --streams=1,2,4 \
  --repeats=3 --engine_dir="$dir" "$@"
