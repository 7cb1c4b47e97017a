#!/bin/bash
# What TLS costs search QPS, in one command: makes a throw-away CA and a
# server certificate for 127.0.0.1 with openssl, starts two peakknn-servers
# on free loopback ports (plaintext, and TLS with that certificate), loads
# the same generated rows into each, then runs peakknn-loadgen's search
# mode against them alternately (plaintext, TLS, plaintext, TLS, ...) and
# prints each run's service QPS (and, from round 2, the server's CPU time
# per query) and the ratio TLS / plaintext of their sums. Stops the
# servers and removes every file (keys included) on exit.
#
#   bench/tls_cost.sh [BUILD_DIR] [ROUNDS] [extra peakknn-loadgen flags...]
#
# Defaults: build, 2 rounds, --rows=200000 --dim=128 --clients=64, runs of
# DURATION_S (10) seconds (later flags win, but set the run length with
# DURATION_S: the CPU per query divides by it). Needs: ninja -C BUILD_DIR
# peakknn-server peakknn-loadgen, and openssl.
set -euo pipefail
build=${1:-build}
rounds=${2:-2}
shift 2 || shift $# || true
dir=$(mktemp -d "${TMPDIR:-/tmp}/peakknn-tls-cost-XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT

(
  cd "$dir"
  ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  openssl req -x509 -new $ec -keyout ca.key -out ca.pem -days 1 \
    -subj "/CN=tls_cost CA" 2>/dev/null
  openssl req -new $ec -keyout server.key -out server.csr \
    -subj "/CN=localhost" 2>/dev/null
  echo "subjectAltName=IP:127.0.0.1,DNS:localhost" >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 1 -out server.pem -extfile server.ext 2>/dev/null
)

# start NAME [server flags...]: starts a server; its port goes to $dir/NAME.port.
start() {
  local name=$1
  shift
  "$build/server/peakknn-server" --listen=127.0.0.1:0 --metrics_listen= \
    --port_file="$dir/$name.port" --data_dir="$dir/$name-data" "$@" \
    2>"$dir/$name.log" &
  pids+=($!)
  for _ in $(seq 100); do
    [[ -s "$dir/$name.port" ]] && return 0
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      cat "$dir/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
}
start plain
start tls --tls_cert_file="$dir/server.pem" --tls_key_file="$dir/server.key"

# CPU time (user + system) a process has used, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A total=([plain]=0 [tls]=0) pid_of=([plain]=${pids[0]} [tls]=${pids[1]})
ticks=$(getconf CLK_TCK)
duration=${DURATION_S:-10}
for round in $(seq "$rounds"); do
  for name in plain tls; do
    port=$(head -n 1 "$dir/$name.port")
    flags=(--server="127.0.0.1:$port" --rows=200000 --dim=128 --clients=64
      --duration_s="$duration")
    [[ $name == tls ]] && flags+=(--tls_ca="$dir/ca.pem")
    [[ $round -gt 1 ]] && flags+=(--skip_load)
    before=$(cpu_ticks "${pid_of[$name]}")
    line=$("$build/bench/peakknn-loadgen" "${flags[@]}" "$@" | grep 'service:')
    used=$(($(cpu_ticks "${pid_of[$name]}") - before))
    qps=$(sed -E 's/.*Search: ([0-9]+) QPS.*/\1/' <<<"$line")
    total[$name]=$((total[$name] + qps))
    # The server's own CPU per query (round 1 also loads the rows, so only
    # later rounds say what a search costs): the share of the TLS cost the
    # server pays, apart from the clients' on this same machine.
    cpu=""
    if ((round > 1)); then
      cpu=$(awk -v u="$used" -v t="$ticks" -v q="$qps" -v d="$duration" \
        'BEGIN { printf ", server CPU %.0f us/query", 1e6 * u / t / (q * d) }')
    fi
    echo "round $round $name:$line$cpu"
  done
done
awk -v p="${total[plain]}" -v t="${total[tls]}" 'BEGIN {
  d = 100 * (t / p - 1)
  printf "TLS / plaintext QPS: %d / %d = %.3f (TLS %.1f%% %s)\n", t, p,
    t / p, d < 0 ? -d : d, d < 0 ? "slower" : "faster" }'
