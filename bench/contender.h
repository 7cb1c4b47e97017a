// One system under test: loads the base rows, then answers batches of
// k-NN queries. Every contender runs in the same process on the same threads.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "io/vector_files.h"

namespace peakknn::bench {

// A quantity a system does not have (e.g. the recall an HNSW graph
// promises); reported as "-" in the table and null in JSON.
inline constexpr double kNotApplicable =
    std::numeric_limits<double>::quiet_NaN();

struct SearchOutput {
  std::vector<int64_t> rows;     // [queries][k] base row indices, -1 for none
  double recall_target = 1.0;    // what the system was asked for
  double expected_recall = 1.0;  // what it promises (1 for exact search)
};

class Contender {
 public:
  virtual ~Contender() = default;
  // "peakknn", "faiss-flat", "faiss-hnsw", "faiss-ivf".
  virtual std::string system() const = 0;
  virtual std::string dtype() const = 0;  // "f32", "bf16"
  // Loads the base rows (row i gets id i), building whatever index the
  // system needs. Timed separately from search.
  virtual absl::Status Build(const FloatMatrix& base) = 0;
  // Searches the whole batch of queries at once, at the selected setting.
  virtual absl::StatusOr<SearchOutput> Search(const FloatMatrix& queries,
                                              int64_t k) = 0;

  // Search-time settings measured after one Build: HNSW efSearch values,
  // IVF nprobe values, peakknn recall targets. Setting 0 is selected after
  // construction.
  virtual int num_settings() const { return 1; }
  virtual absl::Status SelectSetting(int index) {
    if (index != 0) {
      return absl::OutOfRangeError(absl::StrCat(
          system(), " has one setting; asked for setting ", index));
    }
    return absl::OkStatus();
  }
  // The selected setting as "name=value" ("efSearch=64"); "" when the
  // system has nothing to tune beyond its recall target.
  virtual std::string setting() const { return ""; }
};

}  // namespace peakknn::bench
