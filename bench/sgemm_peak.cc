#include "bench/sgemm_peak.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <vector>

// The Fortran BLAS entry point: every BLAS implementation exports it.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m,
                       const int* n, const int* k, const float* alpha,
                       const float* a, const int* lda, const float* b,
                       const int* ldb, const float* beta, float* c,
                       const int* ldc);

namespace peakknn::bench {

double MeasureSgemmPeakGflops(int size, int repeats) {
  const size_t elements = static_cast<size_t>(size) * size;
  std::vector<float> a(elements), b(elements), c(elements);
  for (size_t i = 0; i < elements; ++i) {
    a[i] = static_cast<float>(i % 7) * 0.125f;
    b[i] = static_cast<float>(i % 5) * 0.25f;
  }
  const float alpha = 1.0f, beta = 0.0f;
  double best = std::numeric_limits<double>::infinity();
  for (int rep = 0; rep <= repeats; ++rep) {  // rep 0 is the warm-up
    const auto start = std::chrono::steady_clock::now();
    sgemm_("N", "N", &size, &size, &size, &alpha, a.data(), &size, b.data(),
           &size, &beta, c.data(), &size);
    const std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - start;
    if (rep > 0) best = std::min(best, took.count());
  }
  return 2.0 * size * static_cast<double>(size) * size / best / 1e9;
}

}  // namespace peakknn::bench
