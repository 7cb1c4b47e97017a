// One FAISS batch search as a benchmark SearchOutput: FAISS reports errors
// by throwing faiss::FaissException; here they become statuses so none
// escapes the benchmark's modules.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "bench/contender.h"
#include "io/vector_files.h"

namespace faiss {
struct Index;
}

namespace peakknn::bench {

// Searches `queries` ([rows][dim] f32) for k neighbours in `index`; `system`
// names the contender in error messages. recall_target and expected_recall
// of the output are left for the caller to set.
absl::StatusOr<SearchOutput> FaissSearch(const std::string& system,
                                         const faiss::Index& index,
                                         const FloatMatrix& queries, int64_t k);

}  // namespace peakknn::bench
