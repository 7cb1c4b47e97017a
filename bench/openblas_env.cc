#include "bench/openblas_env.h"

#include <omp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

// Only OpenBLAS defines this; weak so the benchmark also links against
// another BLAS (the call is then skipped).
extern "C" void openblas_set_num_threads(int threads) __attribute__((weak));

namespace peakknn::bench {
namespace {

constexpr const char* kOverrides[] = {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"};
// Set in the re-executed process so that it can say what happened.
constexpr const char* kMarker = "PEAKKNN_BENCH_REEXECUTED";

}  // namespace

std::string ReexecWithoutOpenblasOverrides(char** argv) {
  std::string found;
  for (const char* name : kOverrides) {
    if (const char* value = std::getenv(name)) {
      found += std::string(found.empty() ? "" : " ") + name + "=" + value;
    }
  }
  if (!found.empty()) {
    std::fprintf(stderr,
                 "peakknn-bench: %s is set (slows OpenBLAS ~2x); unsetting "
                 "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE and re-executing so "
                 "every contender runs without them\n",
                 found.c_str());
    std::fflush(stderr);
    for (const char* name : kOverrides) unsetenv(name);
    setenv(kMarker, found.c_str(), 1);
    execv("/proc/self/exe", argv);
    std::fprintf(stderr,
                 "peakknn-bench: re-exec of /proc/self/exe failed: %s\n",
                 std::strerror(errno));
    std::exit(1);
  }
  if (const char* previous = std::getenv(kMarker)) {
    std::string line = std::string(
                           "OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE: unset "
                           "by re-exec (were: ") +
                       previous + ")";
    unsetenv(kMarker);
    return line;
  }
  return "OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE: were not set";
}

void SetBlasThreads(int threads) {
  omp_set_num_threads(threads);
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(threads);
}

}  // namespace peakknn::bench
