#include "bench/recall.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace peakknn::bench {
namespace {

// Larger is better in every metric (L2 as the negated squared distance).
double Score(const float* q, const float* x, int64_t dim, Metric metric) {
  double s = 0;
  if (metric == Metric::kL2) {
    for (int64_t d = 0; d < dim; ++d) {
      const double diff = static_cast<double>(q[d]) - x[d];
      s -= diff * diff;
    }
  } else {
    for (int64_t d = 0; d < dim; ++d) s += static_cast<double>(q[d]) * x[d];
  }
  return s;
}

}  // namespace

double MeasuredRecall(const FloatMatrix& base, const FloatMatrix& queries,
                      Metric metric, int64_t k,
                      const std::vector<int64_t>& found, int64_t found_stride,
                      const std::vector<int64_t>& truth, int64_t truth_stride) {
  const int64_t want = std::min(k, base.rows);
  if (queries.rows == 0 || want == 0) return 1.0;
  double total = 0;
  std::vector<int64_t> seen;
  for (int64_t q = 0; q < queries.rows; ++q) {
    const float* query = queries.row(q);
    // The k-th best true score.
    double kth = INFINITY;
    for (int64_t i = 0; i < want; ++i) {
      const int64_t row = truth[q * truth_stride + i];
      if (row >= 0) {
        kth = std::min(kth, Score(query, base.row(row), base.dim, metric));
      }
    }
    const double threshold = kth - 1e-6 * std::max(1.0, std::fabs(kth));
    seen.clear();
    int64_t hits = 0;
    for (int64_t i = 0; i < std::min(k, found_stride); ++i) {
      const int64_t row = found[q * found_stride + i];
      if (row < 0 || row >= base.rows ||
          std::find(seen.begin(), seen.end(), row) != seen.end()) {
        continue;
      }
      seen.push_back(row);
      if (Score(query, base.row(row), base.dim, metric) >= threshold) ++hits;
    }
    total += static_cast<double>(std::min(hits, want)) / want;
  }
  return total / queries.rows;
}

void NormalizeRows(FloatMatrix& m) {
  for (int64_t r = 0; r < m.rows; ++r) {
    float* row = m.values.data() + r * m.dim;
    double norm = 0;
    for (int64_t d = 0; d < m.dim; ++d)
      norm += static_cast<double>(row[d]) * row[d];
    if (norm == 0) continue;
    const double inv = 1.0 / std::sqrt(norm);
    for (int64_t d = 0; d < m.dim; ++d)
      row[d] = static_cast<float>(row[d] * inv);
  }
}

}  // namespace peakknn::bench
