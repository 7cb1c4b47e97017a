#!/bin/bash
# Cluster mode's bars (issue 13), each in one command on loopback: real
# nats-server processes with JetStream, real shard replicas and a router
# (peakknn-server --role=shard|router), and for comparison a standalone
# peakknn-server, all started here on free ports in a temporary directory
# and stopped (and removed) on exit. peakknn-loadgen drives them.
#
#   bench/cluster_bench.sh overhead [BUILD_DIR] [ROUNDS]
#       Router overhead: 1 NATS node (stream R1), 1 shard x 1 replica behind
#       the router vs a standalone server, the same rows loaded into each;
#       then search runs (64 clients, single-query Search, DURATION_S
#       seconds) alternating standalone, router, standalone, ... and the
#       ratio router / standalone of the summed QPS.
#   bench/cluster_bench.sh ingest [BUILD_DIR]
#       Durable ingest through the router into 2 shards (3 NATS nodes,
#       streams R3, one replica per shard applying meanwhile) vs a
#       standalone server (--durability=fsync): peakknn-loadgen's insert
#       mode (InsertStreams of 4096 rows, 8 unacked) with 1 and 4 streams.
#   bench/cluster_bench.sh failover [BUILD_DIR]
#       1 shard x 2 replicas (3 NATS nodes) behind the router; a search run
#       of DURATION_S seconds during which one replica is killed (kill -9)
#       half a second in: the run's p99 latency and its error count.
#
# Rows: ROWS (default 200000) generated 128-d f32 vectors; k 10, recall
# target 0.95. Needs: ninja -C BUILD_DIR peakknn-server peakknn-loadgen
# peakknn, and nats-server (scripts/install-deps.sh).
set -euo pipefail
mode=${1:?usage: bench/cluster_bench.sh overhead|ingest|failover [BUILD_DIR] [ROUNDS]}
build=${2:-build}
rounds=${3:-3}
rows=${ROWS:-200000}
duration=${DURATION_S:-10}
dir=$(mktemp -d "${TMPDIR:-/tmp}/peakknn-cluster-bench-XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
[[ -x $nats_bin ]] || { echo "cluster_bench: nats-server is not installed" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# nats NODES: starts a JetStream cluster of NODES servers (1: no cluster);
# sets nats_urls.
nats() {
  local n=$1 i routes="" client=() cluster=() monitor=()
  for ((i = 0; i < n; i++)); do
    client+=("$(free_port)") cluster+=("$(free_port)") monitor+=("$(free_port)")
    routes+="${routes:+,}nats://127.0.0.1:${cluster[i]}"
  done
  nats_urls=""
  for ((i = 0; i < n; i++)); do
    local flags=(--jetstream --store_dir "$dir/nats-$i" --server_name "n$i"
      --addr 127.0.0.1 --port "${client[i]}" --http_port "${monitor[i]}")
    ((n > 1)) && flags+=(--cluster_name bench --cluster "nats://127.0.0.1:${cluster[i]}" --routes "$routes")
    "$nats_bin" "${flags[@]}" >"$dir/nats-$i.log" 2>&1 &
    pids+=($!)
    nats_urls+="${nats_urls:+,}nats://127.0.0.1:${client[i]}"
  done
  for ((i = 0; i < n; i++)); do
    for _ in $(seq 300); do
      curl -sf "http://127.0.0.1:${monitor[i]}/jsz" 2>/dev/null | grep -q '"leader": "\|"config"' && break
      sleep 0.1
    done
  done
}

# server NAME [flags...]: starts a peakknn-server, waits until it serves;
# its gRPC port goes to port_of[NAME], its pid to pid_of[NAME].
declare -A port_of pid_of
server() {
  local name=$1
  shift
  "$build/server/peakknn-server" --listen=127.0.0.1:0 --metrics_listen= \
    --port_file="$dir/$name.port" --data_dir="$dir/$name-data" \
    --backend=cpu --drain_seconds=1 "$@" 2>"$dir/$name.log" &
  pids+=($!)
  pid_of[$name]=$!
  for _ in $(seq 900); do
    grep -q 'peakknn-server: serving$' "$dir/$name.log" && break
    if ! kill -0 "${pid_of[$name]}" 2>/dev/null; then
      cat "$dir/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  port_of[$name]=$(head -n 1 "$dir/$name.port")
}

# live_rows NAME: the live rows of collection "loadgen" as NAME reports.
live_rows() {
  "$build/client/peakknn" --server="127.0.0.1:${port_of[$1]}" list 2>/dev/null |
    awk '$1 == "loadgen" { print $6 }'
}

# loaded NAME: loads the rows into NAME (a 0.2 s search run that creates
# the collection and inserts first), then waits until all are searchable.
loaded() {
  "$build/bench/peakknn-loadgen" --server="127.0.0.1:${port_of[$1]}" \
    --rows="$rows" --dim=128 --clients=1 --duration_s=0.2 >/dev/null
  for _ in $(seq 600); do
    [[ "$(live_rows "$1")" == "$rows" ]] && return 0
    sleep 0.1
  done
  echo "cluster_bench: $1 shows $(live_rows "$1") of $rows rows" >&2
  exit 1
}

search_run() {  # NAME: one measured search run; prints loadgen's service line
  "$build/bench/peakknn-loadgen" --server="127.0.0.1:${port_of[$1]}" \
    --rows="$rows" --dim=128 --clients=64 --duration_s="$duration" \
    --skip_load | grep 'service:'
}

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); $rows rows x 128 f32"
case "$mode" in
  overhead)
    nats 1
    server replica --role=shard --nats_urls="$nats_urls" --shard=0 \
      --replica_name=r0 --nats_replicas=1
    server router --role=router --nats_urls="$nats_urls" --shards=1 \
      --nats_replicas=1
    server standalone
    loaded standalone
    loaded router
    declare -A total=([standalone]=0 [router]=0)
    for round in $(seq "$rounds"); do
      for name in standalone router; do
        line=$(search_run "$name")
        qps=$(sed -E 's/.*Search: ([0-9]+) QPS.*/\1/' <<<"$line")
        total[$name]=$((total[$name] + qps))
        echo "round $round $name:$line"
      done
    done
    awk -v s="${total[standalone]}" -v r="${total[router]}" 'BEGIN {
      printf "router / standalone QPS: %d / %d = %.3f\n", r, s, r / s }'
    ;;
  ingest)
    nats 3
    server replica0 --role=shard --nats_urls="$nats_urls" --shard=0 --replica_name=r0
    server replica1 --role=shard --nats_urls="$nats_urls" --shard=1 --replica_name=r0
    server router --role=router --nats_urls="$nats_urls" --shards=2
    server standalone --durability=fsync
    for name in standalone router; do
      echo "== $name"
      "$build/bench/peakknn-loadgen" --mode=insert \
        --server="127.0.0.1:${port_of[$name]}" --rows="$rows" --dim=128 \
        --streams=1,4 --repeats=2 --engine_dir="$dir" | grep -E 'streams|service|run'
    done
    ;;
  failover)
    nats 3
    server r0 --role=shard --nats_urls="$nats_urls" --shard=0 --replica_name=r0
    server r1 --role=shard --nats_urls="$nats_urls" --shard=0 --replica_name=r1
    server router --role=router --nats_urls="$nats_urls" --shards=1
    loaded router
    (sleep 0.5 && kill -9 "${pid_of[r1]}" && echo "killed replica r1 (kill -9) 0.5 s into the run") &
    echo "router, replica r1 killed during the run:$(search_run router)"
    wait
    ;;
  *)
    echo "usage: bench/cluster_bench.sh overhead|ingest|failover [BUILD_DIR] [ROUNDS]" >&2
    exit 2
    ;;
esac
