// One system under test: loads the base rows, then answers batches of
// k-NN queries. Every contender runs in the same process on the same threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/vector_files.h"

namespace peakknn::bench {

struct SearchOutput {
  std::vector<int64_t> rows;     // [queries][k] base row indices, -1 for none
  double recall_target = 1.0;    // what the system was asked for
  double expected_recall = 1.0;  // what it promises (1 for exact search)
};

class Contender {
 public:
  virtual ~Contender() = default;
  virtual std::string system() const = 0;  // "peakknn", "faiss-flat"
  virtual std::string dtype() const = 0;   // "f32", "bf16"
  // Loads the base rows (row i gets id i). Not part of the timed search.
  virtual absl::Status Build(const FloatMatrix& base) = 0;
  // Searches the whole batch of queries at once.
  virtual absl::StatusOr<SearchOutput> Search(const FloatMatrix& queries,
                                              int64_t k) = 0;
};

}  // namespace peakknn::bench
