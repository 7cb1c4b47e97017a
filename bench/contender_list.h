// The contenders of one peakknn-bench run, from --compare and the settings
// flags: which systems, in which order, at which search-time settings.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/thread_pool.h"
#include "bench/contender.h"
#include "bench/faiss_hnsw_contender.h"
#include "bench/faiss_ivf_contender.h"
#include "engine/backend.h"
#include "engine/schema.h"

namespace peakknn::bench {

struct ContenderListConfig {
  // Comma-separated systems beside peakknn: faiss-flat, faiss-hnsw,
  // faiss-ivf; "none" (alone) for peakknn only.
  std::string compare = "faiss-flat";
  Metric metric = Metric::kL2;
  std::vector<DType> dtypes = {DType::kF32};    // one peakknn contender each
  std::vector<double> recall_targets = {0.95};  // peakknn's settings
  HnswSettings hnsw;
  IvfSettings ivf;
  ThreadPool* pool = nullptr;        // peakknn's threads; must outlive them
  SearchBackend* backend = nullptr;  // nullptr: peakknn's CPU backend
};

// The systems --compare names, validated and without duplicates.
absl::StatusOr<std::vector<std::string>> ParseCompare(
    absl::string_view compare);

// faiss-flat first (its exact answer is the ground truth of the rest), then
// peakknn per dtype, then faiss-hnsw and faiss-ivf.
absl::StatusOr<std::vector<std::unique_ptr<Contender>>> MakeContenders(
    const ContenderListConfig& config);

// "16,32,64" -> {16, 32, 64}; `flag` names the list in errors.
absl::StatusOr<std::vector<int64_t>> ParseIntList(absl::string_view flag,
                                                  absl::string_view text);
// "0.8,0.95,1" -> {0.8, 0.95, 1}; every value must lie in (0, 1].
absl::StatusOr<std::vector<double>> ParseRecallList(absl::string_view flag,
                                                    absl::string_view text);

}  // namespace peakknn::bench
