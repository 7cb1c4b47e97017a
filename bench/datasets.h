// The data sets peakknn-bench runs on: base rows, query rows and, when a
// file provides it, ground truth.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "io/vector_files.h"

namespace peakknn::bench {

struct Dataset {
  std::string name;  // for the report: "synthetic", "sift5k", a file name
  FloatMatrix base;
  FloatMatrix queries;
  // Ground-truth neighbour row indices into base, [queries][>= k], when the
  // user supplied them; otherwise the benchmark computes them.
  std::optional<IntMatrix> ground_truth;
};

struct DatasetRequest {
  // "synthetic", "sift5k", "fashion-mnist" or a vector file path.
  std::string data = "synthetic";
  int64_t n = -1;                 // base rows; -1: the data set's default / all
  int64_t dim = 128;              // synthetic only
  int64_t queries = -1;           // -1: the data set's default
  int64_t clusters = 1000;        // synthetic only
  uint64_t seed = 42;             // synthetic only
  std::string queries_file;       // optional, with a file path
  std::string ground_truth_file;  // optional .ivecs
  std::string sift5k_dir;         // holds sift-dataset-5k.tsv
};

// Seeded clustered synthetic set: `clusters` centres drawn from N(0, I);
// every base row and query is a random centre plus N(0, 0.25^2 I) noise, so
// queries come from the same distribution as the rows.
Dataset MakeSynthetic(int64_t n, int64_t dim, int64_t queries, int64_t clusters,
                      uint64_t seed);

// Loads what `request` names. Files without a query file give up their last
// `queries` rows (default 1000) as queries; sift5k holds out its last 500
// rows (its own query file has only 3); fashion-mnist uses Debian's
// train (base) and t10k (queries) images.
absl::StatusOr<Dataset> LoadDataset(const DatasetRequest& request);

}  // namespace peakknn::bench
