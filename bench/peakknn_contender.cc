#include "bench/peakknn_contender.h"

#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace peakknn::bench {

PeakknnContender::PeakknnContender(Metric metric, DType dtype,
                                   double recall_target, ThreadPool* pool,
                                   SearchBackend* backend)
    : metric_(metric),
      dtype_(dtype),
      recall_target_(recall_target),
      pool_(pool),
      backend_(backend) {}

std::string PeakknnContender::dtype() const {
  return std::string(DTypeName(dtype_));
}

absl::Status PeakknnContender::Build(const FloatMatrix& base) {
  CollectionSchema schema;
  schema.name = "bench";
  schema.dim = static_cast<int>(base.dim);
  schema.metric = metric_;
  schema.dtype = dtype_;
  schema.default_recall_target = recall_target_;
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
  absl::StatusOr<SearchResults> results = collection_->Search(
      queries.values, SearchParams{.k = k, .recall_target = recall_target_});
  if (!results.ok()) return results.status();
  SearchOutput out;
  out.recall_target = recall_target_;
  out.expected_recall = results->expected_recall;
  out.rows.assign(queries.rows * k, -1);
  for (int64_t q = 0; q < queries.rows; ++q) {
    for (int32_t i = 0; i < results->counts[q]; ++i) {
      out.rows[q * k + i] = static_cast<int64_t>(results->ids[q * k + i]);
    }
  }
  return out;
}

}  // namespace peakknn::bench
