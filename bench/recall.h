// Measured recall@k against exact ground truth.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/schema.h"
#include "io/vector_files.h"

namespace peakknn::bench {

// Mean over queries of |found ∩ true top-k| / min(k, rows), where a found row
// counts as a true neighbour when its exact score (recomputed in double) is at
// least as good as the k-th best true neighbour's, less a relative 1e-6: rows
// tied with the k-th neighbour (duplicates, integer data) are equally right
// answers (the ann-benchmarks convention). `found` and `truth` are row
// indices, [queries][found_stride] and [queries][truth_stride], -1 for none.
// For COSINE, base and queries must already be normalised.
double MeasuredRecall(const FloatMatrix& base, const FloatMatrix& queries,
                      Metric metric, int64_t k,
                      const std::vector<int64_t>& found, int64_t found_stride,
                      const std::vector<int64_t>& truth, int64_t truth_stride);

// Scales every row to unit length (rows of zeros stay zero).
void NormalizeRows(FloatMatrix& m);

}  // namespace peakknn::bench
