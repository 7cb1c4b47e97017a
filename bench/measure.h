// Timing one contender's batch search: the method every peakknn-bench
// number uses.
#pragma once

#include <cstdint>
#include <limits>

#include "absl/status/statusor.h"
#include "bench/contender.h"
#include "io/vector_files.h"

namespace peakknn::bench {

struct Measurement {
  SearchOutput output;  // from the warm-up run
  double best_seconds = std::numeric_limits<double>::infinity();
};

// One warm-up search, then `repeats` timed ones; keeps the best time (the
// least disturbed by other work on a shared machine).
absl::StatusOr<Measurement> Measure(Contender& contender,
                                    const FloatMatrix& queries, int64_t k,
                                    int repeats);

}  // namespace peakknn::bench
