#!/usr/bin/env bash
# A local peakknn cluster on loopback (issue 13), for trying cluster mode by
# hand: every process on 127.0.0.1, files under ./peakknn-cluster (or
# $PEAKKNN_CLUSTER_DIR).
#
#   scripts/local-cluster.sh up       start what is not running; returns once
#                                     the NATS JetStream cluster has a leader
#   scripts/local-cluster.sh status   one line per process: role, name, pid,
#                                     address, state
#   scripts/local-cluster.sh down     stop exactly the processes `up` started
#                                     (their pid files); the data stays
#
# Processes and fixed ports (the PROCESSES table below):
#
#   role   name    address (clients)  cluster routes   monitoring
#   nats   nats-1  127.0.0.1:4231     127.0.0.1:6231   127.0.0.1:8231
#   nats   nats-2  127.0.0.1:4232     127.0.0.1:6232   127.0.0.1:8232
#   nats   nats-3  127.0.0.1:4233     127.0.0.1:6233   127.0.0.1:8233
#   shard  s0-r0   127.0.0.1:50071    (shard 0)        127.0.0.1:9471
#   shard  s0-r1   127.0.0.1:50072    (shard 0)        127.0.0.1:9472
#   shard  s1-r0   127.0.0.1:50073    (shard 1)        127.0.0.1:9473
#   shard  s1-r1   127.0.0.1:50074    (shard 1)        127.0.0.1:9474
#   router router  127.0.0.1:50061    (2 shards)       127.0.0.1:9461
#
# A 3-node NATS cluster with JetStream (file storage in nats-N/), so that
# streams and buckets with 3 replicas survive one node's loss, 2 shards
# x 2 replicas (peakknn-server --role=shard, data in sN-rM/) and the router
# (peakknn-server --role=router --shards=2, no data): clients talk to
# 127.0.0.1:50061, e.g. `peakknn --server=127.0.0.1:50061 demo`. The
# binary is $PEAKKNN_SERVER_BIN or build/server/peakknn-server.
#
# Each process runs in the background with its log in <name>.log and its pid
# in <name>.pid. Not started here: nats-server must be installed
# (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${PEAKKNN_CLUSTER_DIR:-./peakknn-cluster}"

# role name client-port cluster-port-or-shard monitor-port
PROCESSES=(
  "nats nats-1 4231 6231 8231"
  "nats nats-2 4232 6232 8232"
  "nats nats-3 4233 6233 8233"
  "shard s0-r0 50071 0 9471"
  "shard s0-r1 50072 0 9472"
  "shard s1-r0 50073 1 9473"
  "shard s1-r1 50074 1 9474"
  "router router 50061 2 9461"
)
routes="nats://127.0.0.1:6231,nats://127.0.0.1:6232,nats://127.0.0.1:6233"
nats_urls="nats://127.0.0.1:4231,nats://127.0.0.1:4232,nats://127.0.0.1:4233"

nats_server() {
  command -v nats-server || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; } ||
    { echo "local-cluster: nats-server is not installed (scripts/install-deps.sh)" >&2; exit 1; }
}

# The pid in <name>.pid if that process is still the one we started (its
# command line names our data directory), else nothing.
live_pid() {
  local name="$1" pid
  [ -f "${dir}/${name}.pid" ] || return 0
  pid="$(cat "${dir}/${name}.pid")"
  if [ -r "/proc/${pid}/cmdline" ] &&
    tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -qF -- "$(realpath "${dir}")/${name}"; then
    echo "${pid}"
  fi
}

start_nats() {
  local name="$1" port="$2" cluster_port="$3" monitor_port="$4" data
  data="$(realpath "${dir}")/${name}"
  mkdir -p "${data}"
  # setsid: the server outlives this script and the terminal it ran in.
  setsid "$(nats_server)" --jetstream --store_dir "${data}" \
    --server_name "${name}" --addr 127.0.0.1 --port "${port}" \
    --http_port "${monitor_port}" --cluster_name peakknn-local \
    --cluster "nats://127.0.0.1:${cluster_port}" --routes "${routes}" \
    >>"${dir}/${name}.log" 2>&1 </dev/null &
  echo $! >"${dir}/${name}.pid"
}

server_binary() {
  local bin="${PEAKKNN_SERVER_BIN:-build/server/peakknn-server}"
  [ -x "${bin}" ] || { echo "local-cluster: no peakknn-server at ${bin} (scripts/build.sh peakknn-server, or set PEAKKNN_SERVER_BIN)" >&2; exit 1; }
  echo "${bin}"
}

# A shard replica; it joins NATS itself (retrying for 60 s), so it may start
# before the NATS cluster has a leader.
start_shard() {
  local name="$1" port="$2" shard="$3" metrics_port="$4"
  setsid "$(server_binary)" --role=shard --nats_urls="${nats_urls}" \
    --shard="${shard}" --replica_name="${name}" \
    --listen="127.0.0.1:${port}" --metrics_listen="127.0.0.1:${metrics_port}" \
    --data_dir="$(realpath "${dir}")/${name}" \
    >>"${dir}/${name}.log" 2>&1 </dev/null &
  echo $! >"${dir}/${name}.pid"
}

# The router; it joins NATS itself (retrying for 60 s) and creates
# collections with `shards` shards. It keeps no data; its port file names
# our directory on its command line (live_pid).
start_router() {
  local name="$1" port="$2" shards="$3" metrics_port="$4"
  setsid "$(server_binary)" --role=router --nats_urls="${nats_urls}" \
    --shards="${shards}" --listen="127.0.0.1:${port}" \
    --metrics_listen="127.0.0.1:${metrics_port}" \
    --port_file="$(realpath "${dir}")/${name}.port" \
    >>"${dir}/${name}.log" 2>&1 </dev/null &
  echo $! >"${dir}/${name}.pid"
}

# Whether the NATS server answering on monitor_port knows a JetStream meta
# leader.
nats_has_leader() {
  curl -sf "http://127.0.0.1:$1/jsz" 2>/dev/null | grep -q '"leader": "'
}

# await NAME DEADLINE WHAT CHECK...: runs CHECK until it succeeds; fails
# with NAME's log when the process exits, or saying WHAT once SECONDS passes
# DEADLINE.
await() {
  local name="$1" deadline="$2" what="$3"
  shift 3
  until "$@"; do
    if [ -z "$(live_pid "${name}")" ]; then
      echo "local-cluster: ${name} exited; last lines of ${dir}/${name}.log:" >&2
      tail -n 20 "${dir}/${name}.log" >&2
      exit 1
    fi
    if ((SECONDS > deadline)); then
      echo "local-cluster: ${name} ${what}" >&2
      exit 1
    fi
    sleep 0.2
  done
}

up() {
  mkdir -p "${dir}"
  echo '*' >"${dir}/.gitignore"  # never committed
  local role name port cluster_port monitor_port
  for p in "${PROCESSES[@]}"; do
    read -r role name port cluster_port monitor_port <<<"${p}"
    if [ -n "$(live_pid "${name}")" ]; then
      echo "local-cluster: ${name} already running"
      continue
    fi
    "start_${role}" "${name}" "${port}" "${cluster_port}" "${monitor_port}"
  done
  # NATS first (the table's order), then the replicas, which join it.
  local start=${SECONDS}
  for p in "${PROCESSES[@]}"; do
    read -r role name port cluster_port monitor_port <<<"${p}"
    case "${role}" in
      nats) await "${name}" $((start + 30)) "sees no JetStream meta leader after 30 s" \
        nats_has_leader "${monitor_port}" ;;
      shard | router) await "${name}" $((start + 90)) "is not serving after 90 s" \
        serving "${name}" ;;
    esac
  done
  echo "local-cluster: up; NATS JetStream cluster has a meta leader, replicas and router serve (router on 127.0.0.1:50061)"
  status
}

# Whether the server's current run logged "serving" (after it joined NATS),
# not an earlier run's.
serving() {
  grep -E 'peakknn-server: (serving|listening on)' "${dir}/$1.log" 2>/dev/null |
    tail -n 1 | grep -q 'serving$'
}

status() {
  local role name port cluster_port monitor_port pid state
  for p in "${PROCESSES[@]}"; do
    read -r role name port cluster_port monitor_port <<<"${p}"
    pid="$(live_pid "${name}")"
    if [ -z "${pid}" ]; then
      state=stopped
    elif [ "${role}" = nats ] && ! nats_has_leader "${monitor_port}"; then
      state="running, no JetStream leader"
    elif [ "${role}" != nats ] && ! serving "${name}"; then
      state="running, not serving yet"
    else
      state=running
    fi
    printf '%-6s %-8s pid %-8s 127.0.0.1:%-6s %s\n' \
      "${role}" "${name}" "${pid:--}" "${port}" "${state}"
  done
}

down() {
  local role name rest pid i
  # Last first: the router, then the shard replicas, then the NATS cluster
  # they use.
  for ((i = ${#PROCESSES[@]} - 1; i >= 0; i--)); do
    p="${PROCESSES[i]}"
    read -r role name rest <<<"${p}"
    pid="$(live_pid "${name}")"
    if [ -n "${pid}" ]; then
      kill -TERM "${pid}"
      for _ in $(seq 100); do
        kill -0 "${pid}" 2>/dev/null || break
        sleep 0.1
      done
      if kill -0 "${pid}" 2>/dev/null; then
        echo "local-cluster: ${name} (pid ${pid}) ignored SIGTERM for 10 s; killing it" >&2
        kill -KILL "${pid}"
      fi
      echo "local-cluster: stopped ${name} (pid ${pid})"
    fi
    rm -f "${dir}/${name}.pid"
  done
}

case "${1:-}" in
  up | status | down) "$1" ;;
  *)
    echo "usage: $0 up|status|down" >&2
    exit 2
    ;;
esac
