#!/usr/bin/env bash
# Builds peakknn under the sanitizers and runs the test suite on each build;
# any sanitizer report fails the run.
#
#   scripts/test-sanitizers.sh            # address (ASan+UBSan), then thread
#   scripts/test-sanitizers.sh thread     # one of them
#
# Needs only the packages of scripts/install-deps.sh (the sanitizer runtimes
# come with g++). Build trees: build-asan/ and build-tsan/ in the repository
# root, reused between runs. JOBS (default 2) sets the build and ctest
# parallelism. The CUDA backend is left out (PEAKKNN_CUDA=OFF): nvcc code is
# not instrumented and it would double the build time.
#
# Each test's whole run counts, child processes included: the integration
# tests start the real peakknn-server / peakknn binaries, which are built with
# the same sanitizer and inherit the options below, so a report in the server
# makes it exit non-zero and the test fail.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="${JOBS:-2}"
modes=("$@")
((${#modes[@]})) || modes=(address thread)

# halt_on_error: the first report ends the process with a failure (no report
# scrolls by in a passing test). ASan's abort_on_error gives a core-style
# abort instead of exit(1) so a child's report cannot be mistaken for a
# normal error exit code.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
# The suppressions only name Debian's uninstrumented gRPC and absl libraries
# and FAISS's OpenMP loops (see the file); nothing in peakknn's code is
# suppressed.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=${root}/scripts/tsan-suppressions.txt"

run_mode() {
  local mode="$1" dir
  case "${mode}" in
    address) dir="${root}/build-asan" ;;
    thread) dir="${root}/build-tsan" ;;
    *)
      echo "test-sanitizers: unknown mode '${mode}' (address or thread)" >&2
      return 2
      ;;
  esac
  local start=${SECONDS}
  cmake -S "${root}" -B "${dir}" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPEAKKNN_SANITIZE="${mode}" -DPEAKKNN_CUDA=OFF >/dev/null
  ninja -C "${dir}" -j "${jobs}"
  local built=${SECONDS}

  local -a wrap=() select=()
  if [[ "${mode}" == thread ]]; then
    # TSan runs every test except those labelled "grpc" (server_integration,
    # prometheus_scrape, cli: they run the real server and client over gRPC).
    # Debian's gRPC and absl are not built with TSan: their locking is
    # invisible to it, and the inline parts of gRPC's headers compiled into
    # our binaries (callback tags, call refcounts, status strings) then race
    # with its uninstrumented threads in every RPC. Those reports are false,
    # and any suppression broad enough to hide them would also hide races in
    # server/ handlers (their stacks run through the same gRPC frames). The
    # server's own concurrency (batcher, registry, collections) is covered
    # in-process by batcher_test, collection_test and store_concurrency_test; ASan runs
    # the gRPC tests too.
    select=(-LE grpc)
    # GCC 12's TSan runtime cannot map its shadow memory when the kernel
    # randomises mmap with many bits (vm.mmap_rnd_bits > 28, e.g. Linux
    # 6.x defaults on some distributions): every binary dies with
    # "FATAL: ThreadSanitizer: unexpected memory mapping". Running with
    # ASLR off for this process tree (setarch -R) avoids it.
    if "${dir}/tests/schema_test" --gtest_list_tests 2>&1 |
      grep -q "unexpected memory mapping"; then
      echo "test-sanitizers: TSan cannot map its shadow memory with ASLR on;" \
        "running the tests under 'setarch -R'"
      wrap=(setarch "$(uname -m)" -R)
    fi
  fi
  (cd "${dir}" && "${wrap[@]}" ctest -j "${jobs}" --timeout 600 \
    --output-on-failure "${select[@]}")
  echo "test-sanitizers: ${mode}: build $((built - start)) s," \
    "tests $((SECONDS - built)) s"
}

for mode in "${modes[@]}"; do
  run_mode "${mode}"
done
echo "test-sanitizers: all clean (${modes[*]})"
