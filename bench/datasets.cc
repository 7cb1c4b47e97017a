#include "bench/datasets.h"

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace peakknn::bench {
namespace {

constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";
constexpr int64_t kDefaultSyntheticRows = 100000;
constexpr int64_t kDefaultSyntheticQueries = 1024;
constexpr int64_t kDefaultHeldOutQueries = 1000;
constexpr int64_t kSift5kHeldOutQueries = 500;
constexpr float kClusterSpread = 0.25f;

// Rows [begin, end) of m.
FloatMatrix Slice(const FloatMatrix& m, int64_t begin, int64_t end) {
  FloatMatrix out{end - begin, m.dim, {}};
  out.values.assign(m.values.begin() + begin * m.dim,
                    m.values.begin() + end * m.dim);
  return out;
}

// Splits the last `queries` rows off as queries.
absl::StatusOr<Dataset> HoldOut(std::string name, FloatMatrix all,
                                int64_t queries) {
  if (queries < 1 || queries >= all.rows) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": cannot hold out ", queries, " queries from ",
                     all.rows, " rows; need 1 <= queries < rows"));
  }
  Dataset d;
  d.name = std::move(name);
  d.queries = Slice(all, all.rows - queries, all.rows);
  all.values.resize((all.rows - queries) * all.dim);
  all.rows -= queries;
  d.base = std::move(all);
  return d;
}

ReadOptions Rows(int64_t n) { return ReadOptions{.max_rows = n}; }

absl::StatusOr<Dataset> LoadFashionMnist(const DatasetRequest& r) {
  Dataset d;
  d.name = "fashion-mnist";
  absl::StatusOr<FloatMatrix> base = ReadIdx(
      absl::StrCat(kFashionMnistDir, "/train-images-idx3-ubyte.gz"), Rows(r.n));
  if (!base.ok()) {
    return absl::Status(
        base.status().code(),
        absl::StrCat(base.status().message(),
                     " (apt-get install dataset-fashion-mnist)"));
  }
  absl::StatusOr<FloatMatrix> queries =
      ReadIdx(absl::StrCat(kFashionMnistDir, "/t10k-images-idx3-ubyte.gz"),
              Rows(r.queries));
  if (!queries.ok()) return queries.status();
  d.base = *std::move(base);
  d.queries = *std::move(queries);
  return d;
}

absl::StatusOr<Dataset> LoadSift5k(const DatasetRequest& r) {
  const std::string path = absl::StrCat(r.sift5k_dir, "/sift-dataset-5k.tsv");
  // Each line: 128 values, then an id column that is not part of the vector.
  absl::StatusOr<FloatMatrix> all =
      ReadDelimited(path, '\t', ReadOptions{.columns = 128});
  if (!all.ok()) return all.status();
  const int64_t queries = r.queries > 0 ? r.queries : kSift5kHeldOutQueries;
  absl::StatusOr<Dataset> d = HoldOut("sift5k", *std::move(all), queries);
  if (d.ok() && r.n >= 0 && r.n < d->base.rows) {
    d->base = Slice(d->base, 0, r.n);
  }
  return d;
}

absl::StatusOr<Dataset> LoadFile(const DatasetRequest& r) {
  const std::string name = std::filesystem::path(r.data).filename().string();
  if (r.queries_file.empty()) {
    if (!r.ground_truth_file.empty()) {
      return absl::InvalidArgumentError(
          "--ground-truth needs --queries-file: held-out queries have no "
          "precomputed ground truth");
    }
    const int64_t queries = r.queries > 0 ? r.queries : kDefaultHeldOutQueries;
    absl::StatusOr<FloatMatrix> all =
        ReadVectors(r.data, Rows(r.n >= 0 ? r.n + queries : -1));
    if (!all.ok()) return all.status();
    return HoldOut(name, *std::move(all), queries);
  }
  Dataset d;
  d.name = name;
  absl::StatusOr<FloatMatrix> base = ReadVectors(r.data, Rows(r.n));
  if (!base.ok()) return base.status();
  absl::StatusOr<FloatMatrix> queries =
      ReadVectors(r.queries_file, Rows(r.queries));
  if (!queries.ok()) return queries.status();
  if (queries->dim != base->dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(r.queries_file, " has dim ", queries->dim, " but ", r.data,
                     " has dim ", base->dim));
  }
  d.base = *std::move(base);
  d.queries = *std::move(queries);
  if (!r.ground_truth_file.empty()) {
    absl::StatusOr<IntMatrix> gt =
        ReadIvecs(r.ground_truth_file, Rows(d.queries.rows));
    if (!gt.ok()) return gt.status();
    if (gt->rows != d.queries.rows) {
      return absl::InvalidArgumentError(
          absl::StrCat(r.ground_truth_file, " has ", gt->rows,
                       " rows; expected one per query (", d.queries.rows, ")"));
    }
    for (int32_t id : gt->values) {
      if (id < 0 || id >= d.base.rows) {
        return absl::InvalidArgumentError(
            absl::StrCat(r.ground_truth_file, " names row ", id,
                         ", outside the ", d.base.rows, " base rows read"));
      }
    }
    d.ground_truth = *std::move(gt);
  }
  return d;
}

}  // namespace

Dataset MakeSynthetic(int64_t n, int64_t dim, int64_t queries, int64_t clusters,
                      uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> pick(0, clusters - 1);
  std::vector<float> centres(clusters * dim);
  for (float& c : centres) c = normal(rng);
  const auto draw = [&](int64_t rows) {
    FloatMatrix m{rows, dim, std::vector<float>(rows * dim)};
    for (int64_t r = 0; r < rows; ++r) {
      const float* centre = centres.data() + pick(rng) * dim;
      float* row = m.values.data() + r * dim;
      for (int64_t d = 0; d < dim; ++d) {
        row[d] = centre[d] + kClusterSpread * normal(rng);
      }
    }
    return m;
  };
  Dataset d;
  d.name = "synthetic";
  d.base = draw(n);
  d.queries = draw(queries);
  return d;
}

absl::StatusOr<Dataset> LoadDataset(const DatasetRequest& r) {
  if (r.data == "synthetic") {
    const int64_t n = r.n >= 0 ? r.n : kDefaultSyntheticRows;
    const int64_t queries =
        r.queries > 0 ? r.queries : kDefaultSyntheticQueries;
    if (n < 1 || r.dim < 1 || r.clusters < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "synthetic data needs n, dim and clusters >= 1; got n=", n,
          " dim=", r.dim, " clusters=", r.clusters));
    }
    return MakeSynthetic(n, r.dim, queries, r.clusters, r.seed);
  }
  if (r.data == "fashion-mnist") return LoadFashionMnist(r);
  if (r.data == "sift5k") return LoadSift5k(r);
  return LoadFile(r);
}

}  // namespace peakknn::bench
