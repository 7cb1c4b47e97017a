#include "bench/peakknn_contender.h"

#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace peakknn::bench {

PeakknnContender::PeakknnContender(Metric metric, DType dtype,
                                   std::vector<double> recall_targets,
                                   ThreadPool* pool, SearchBackend* backend)
    : metric_(metric),
      dtype_(dtype),
      recall_targets_(std::move(recall_targets)),
      pool_(pool),
      backend_(backend) {}

std::string PeakknnContender::dtype() const {
  return std::string(DTypeName(dtype_));
}

absl::Status PeakknnContender::Build(const FloatMatrix& base) {
  if (recall_targets_.empty()) {
    return absl::InvalidArgumentError("peakknn: no recall target to search at");
  }
  CollectionSchema schema;
  schema.name = "bench";
  schema.dim = static_cast<int>(base.dim);
  schema.metric = metric_;
  schema.dtype = dtype_;
  schema.default_recall_target = recall_targets_[selected_];
  absl::StatusOr<std::unique_ptr<Collection>> collection = Collection::Create(
      schema, CollectionOptions{.pool = pool_, .backend = backend_});
  if (!collection.ok()) return collection.status();
  collection_ = *std::move(collection);
  std::vector<uint64_t> ids(base.rows);
  std::iota(ids.begin(), ids.end(), uint64_t{0});
  return collection_->Write(WriteMode::kInsert, ids, base.values);
}

absl::StatusOr<SearchOutput> PeakknnContender::Search(
    const FloatMatrix& queries, int64_t k) {
  if (collection_ == nullptr) {
    return absl::FailedPreconditionError("peakknn: Search before Build");
  }
  const double target = recall_targets_[selected_];
  absl::StatusOr<SearchResults> results = collection_->Search(
      queries.values, SearchParams{.k = k, .recall_target = target});
  if (!results.ok()) return results.status();
  SearchOutput out;
  out.recall_target = target;
  out.expected_recall = results->expected_recall;
  out.rows.assign(queries.rows * k, -1);
  for (int64_t q = 0; q < queries.rows; ++q) {
    for (int32_t i = 0; i < results->counts[q]; ++i) {
      out.rows[q * k + i] = static_cast<int64_t>(results->ids[q * k + i]);
    }
  }
  return out;
}

int PeakknnContender::num_settings() const {
  return static_cast<int>(recall_targets_.size());
}

absl::Status PeakknnContender::SelectSetting(int index) {
  if (index < 0 || index >= num_settings()) {
    return absl::OutOfRangeError(absl::StrCat(
        "peakknn: setting ", index, " of ", num_settings(), " recall targets"));
  }
  selected_ = index;
  return absl::OkStatus();
}

}  // namespace peakknn::bench
