#!/usr/bin/env bash
# Builds the fuzz targets of tests/fuzz with libFuzzer (clang 14,
# ASan+UBSan) and runs each for a short fixed time over a copy of its seed
# corpus and past crashes; any crash, sanitizer report, leak, timeout or
# out-of-memory fails the run and prints where the reproducer was written.
#
#   scripts/test-fuzz.sh                      # every target, 30 s each
#   FUZZ_SECONDS=600 scripts/test-fuzz.sh     # a longer run
#   scripts/test-fuzz.sh request manifest     # some targets
#
# Build tree: build-fuzz/ in the repository root, reused between runs; only
# the fuzz targets and the libraries they link are built. The corpus copies
# are temporary: what a run finds is not written into the repository
# (tests/fuzz/README.md says how to keep an input). Reproducers go to
# build-fuzz/artifacts/<target>/. JOBS (default 2): the build's parallelism
# and how many targets fuzz at once.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${root}/build-fuzz"
seconds="${FUZZ_SECONDS:-30}"
jobs="${JOBS:-2}"
targets=("$@")
((${#targets[@]})) || targets=(wal_segment checkpoint manifest vector_files request)

start=${SECONDS}
cmake -S "${root}" -B "${dir}" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPEAKKNN_CUDA=OFF -DPEAKKNN_FUZZ=ON \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null
ninja -C "${dir}" -j "${jobs}" "${targets[@]/%/_fuzzer}"
built=${SECONDS}

work="$(mktemp -d "${TMPDIR:-/tmp}/peakknn-fuzz-run.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
# Leaks count as findings; abort_on_error is left off so libFuzzer itself
# reports the crash and writes the reproducer.
export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# Fuzzes one target; its output goes to ${work}/<target>.log.
fuzz() {
  local target="$1" corpus="${work}/$1" artifacts="${dir}/artifacts/$1/"
  mkdir -p "${corpus}" "${artifacts}"
  cp "${root}/tests/fuzz/corpus/${target}/"* "${corpus}/"
  if [[ -d "${root}/tests/fuzz/regressions/${target}" ]]; then
    cp "${root}/tests/fuzz/regressions/${target}/"* "${corpus}/"
  fi
  "${dir}/tests/fuzz/${target}_fuzzer" "${corpus}" \
    -max_total_time="${seconds}" -rss_limit_mb=2048 -malloc_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="${artifacts}" \
    >"${work}/${target}.log" 2>&1
}

failed=()
running=()
for target in "${targets[@]}"; do
  fuzz "${target}" &
  running+=("$!:${target}")
  if ((${#running[@]} >= jobs)) || [[ "${target}" == "${targets[-1]}" ]]; then
    for entry in "${running[@]}"; do
      name="${entry#*:}"
      if wait "${entry%%:*}"; then
        # The closing stats: execs, execs/s, coverage, corpus.
        grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec)|^#[0-9]+[[:space:]]+DONE" \
          "${work}/${name}.log" | tr '\n' ' ' | sed "s/^/test-fuzz: ${name}: /"
        echo
      else
        failed+=("${name}")
        echo "test-fuzz: ${name}: FAILED; the end of its log:" >&2
        tail -n 60 "${work}/${name}.log" >&2
        grep -h "Test unit written to" "${work}/${name}.log" |
          sed "s/^/test-fuzz: ${name}: reproducer: /" >&2 || true
      fi
    done
    running=()
  fi
done
echo "test-fuzz: build $((built - start)) s, fuzzing $((SECONDS - built)) s" \
  "(${seconds} s per target, ${jobs} at a time)"
if ((${#failed[@]})); then
  echo "test-fuzz: crashes in: ${failed[*]} (tests/fuzz/README.md: adding a" \
    "regression)" >&2
  exit 1
fi
echo "test-fuzz: no crash in ${targets[*]}"
