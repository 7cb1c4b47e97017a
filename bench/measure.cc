#include "bench/measure.h"

#include <algorithm>
#include <chrono>

namespace peakknn::bench {

absl::StatusOr<Measurement> Measure(Contender& contender,
                                    const FloatMatrix& queries, int64_t k,
                                    int repeats) {
  Measurement m;
  absl::StatusOr<SearchOutput> warm = contender.Search(queries, k);
  if (!warm.ok()) return warm.status();
  m.output = *std::move(warm);
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<SearchOutput> out = contender.Search(queries, k);
    const std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - start;
    if (!out.ok()) return out.status();
    m.best_seconds = std::min(m.best_seconds, took.count());
  }
  return m;
}

}  // namespace peakknn::bench
