#include "bench/sweep.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/measure.h"
#include "bench/peakknn_contender.h"

namespace peakknn::bench {
namespace {

// The first `rows` rows of m.
FloatMatrix FirstRows(const FloatMatrix& m, int64_t rows) {
  FloatMatrix out;
  out.rows = rows;
  out.dim = m.dim;
  out.values.assign(m.values.begin(), m.values.begin() + rows * m.dim);
  return out;
}

// One point: builds a collection on `base` with `threads` threads, measures
// the batch `queries` at `k`, prints a row.
absl::Status Point(const SweepConfig& config, int64_t value,
                   const FloatMatrix& base, const FloatMatrix& queries,
                   int64_t k, int threads) {
  ThreadPool pool(threads);
  PeakknnContender contender(config.metric, config.dtype,
                             {config.recall_target}, &pool);
  if (absl::Status s = contender.Build(base); !s.ok()) return s;
  absl::StatusOr<Measurement> m =
      Measure(contender, queries, k, config.repeats);
  if (!m.ok()) return m.status();
  const double seconds = m->best_seconds;
  const double element_bytes = config.dtype == DType::kF32 ? 4 : 2;
  const double row_bytes = static_cast<double>(base.rows) * base.dim;
  const double gflops = 2 * row_bytes * queries.rows / seconds / 1e9;
  const double gbps = row_bytes * element_bytes / seconds / 1e9;
  std::printf(
      "%10lld %9lld %8lld %6lld %7d %12.1f %9.1f %9.2f %8.4f %8.1f %8.1f\n",
      static_cast<long long>(value), static_cast<long long>(base.rows),
      static_cast<long long>(queries.rows), static_cast<long long>(k), threads,
      queries.rows / seconds, gflops, gbps, m->output.expected_recall,
      100 * gflops / config.sgemm_peak_gflops,
      100 * gbps / config.bandwidth_gbps);
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunSweep(const SweepConfig& config, const Dataset& data) {
  std::printf(
      "sweep %s: peakknn %s, recall target %.3f\n%10s %9s %8s %6s %7s "
      "%12s %9s %9s %8s %8s %8s\n",
      config.what.c_str(), std::string(DTypeName(config.dtype)).c_str(),
      config.recall_target, config.what.c_str(), "n", "queries", "k", "threads",
      "qps", "gflops", "rows_GB/s", "expected", "%peak", "%bw");
  if (config.what == "n") {
    for (int64_t n : {100000, 250000, 500000, 1000000, 2000000, 4000000}) {
      if (n > data.base.rows) break;
      if (absl::Status s = Point(config, n, FirstRows(data.base, n),
                                 data.queries, config.k, config.threads);
          !s.ok()) {
        return s;
      }
    }
  } else if (config.what == "batch") {
    for (int64_t b : {1, 2, 4, 8, 16, 64, 256, 1024, 4096}) {
      if (b > data.queries.rows) break;
      if (absl::Status s =
              Point(config, b, data.base, FirstRows(data.queries, b), config.k,
                    config.threads);
          !s.ok()) {
        return s;
      }
    }
  } else if (config.what == "k") {
    for (int64_t k : {1, 10, 100, 1000, 4096}) {
      if (k > data.base.rows) break;
      if (absl::Status s =
              Point(config, k, data.base, data.queries, k, config.threads);
          !s.ok()) {
        return s;
      }
    }
  } else if (config.what == "threads") {
    for (int t = 1;; t = std::min(2 * t, config.threads)) {
      if (absl::Status s =
              Point(config, t, data.base, data.queries, config.k, t);
          !s.ok()) {
        return s;
      }
      if (t == config.threads) break;
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--sweep must be n, batch, k or threads, got '", config.what, "'"));
  }
  return absl::OkStatus();
}

}  // namespace peakknn::bench
