#include "bench/memory_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <vector>

namespace peakknn::bench {

double MeasureReadBandwidthGBps(ThreadPool& pool, int64_t bytes, int repeats) {
  const int64_t floats = bytes / static_cast<int64_t>(sizeof(float));
  std::vector<float> buffer(floats, 1.0f);  // touched: pages are resident
  const int64_t parts = pool.num_threads();
  std::vector<float> sums(parts * 16);  // a cache line per part
  double best = std::numeric_limits<double>::infinity();
  for (int rep = 0; rep <= repeats; ++rep) {  // rep 0 is the warm-up
    const auto start = std::chrono::steady_clock::now();
    pool.ParallelFor(parts, [&](int64_t part) {
      const int64_t begin = floats * part / parts;
      const int64_t end = floats * (part + 1) / parts;
      // Eight independent sums so the loop is bound by loads, not by the
      // add latency; the compiler vectorises it.
      float acc[8] = {};
      int64_t i = begin;
      for (; i + 8 <= end; i += 8) {
        for (int j = 0; j < 8; ++j) acc[j] += buffer[i + j];
      }
      for (; i < end; ++i) acc[0] += buffer[i];
      float total = 0;
      for (float a : acc) total += a;
      sums[part * 16] = total;  // keeps the loads live
    });
    const std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - start;
    if (rep > 0) best = std::min(best, took.count());
  }
  return static_cast<double>(floats) * sizeof(float) / best / 1e9;
}

}  // namespace peakknn::bench
