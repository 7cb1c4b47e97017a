#include "bench/faiss_hnsw_contender.h"

#include <faiss/IndexHNSW.h>

#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/faiss_search.h"

namespace peakknn::bench {

FaissHnswContender::FaissHnswContender(Metric metric, HnswSettings settings)
    : metric_(metric), settings_(std::move(settings)) {}

FaissHnswContender::~FaissHnswContender() = default;

absl::Status FaissHnswContender::Build(const FloatMatrix& base) {
  if (settings_.m < 2 || settings_.ef_construction < 1 ||
      settings_.ef_search.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("faiss-hnsw: M must be >= 2 (got ", settings_.m,
                     "), efConstruction >= 1 (got ", settings_.ef_construction,
                     ") and efSearch must list at least one value (got ",
                     settings_.ef_search.size(), ")"));
  }
  try {
    index_ = std::make_unique<faiss::IndexHNSWFlat>(
        static_cast<int>(base.dim), settings_.m,
        metric_ == Metric::kL2 ? faiss::METRIC_L2
                               : faiss::METRIC_INNER_PRODUCT);
    index_->hnsw.efConstruction = settings_.ef_construction;
    index_->add(base.rows, base.values.data());  // builds the graph
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("faiss-hnsw add: ", e.what()));
  }
  return SelectSetting(selected_);
}

absl::StatusOr<SearchOutput> FaissHnswContender::Search(
    const FloatMatrix& queries, int64_t k) {
  if (index_ == nullptr) {
    return absl::FailedPreconditionError("faiss-hnsw: Search before Build");
  }
  absl::StatusOr<SearchOutput> out = FaissSearch(system(), *index_, queries, k);
  if (!out.ok()) return out;
  out->recall_target = kNotApplicable;  // tuned by efSearch, not by recall
  out->expected_recall = kNotApplicable;
  return out;
}

int FaissHnswContender::num_settings() const {
  return static_cast<int>(settings_.ef_search.size());
}

absl::Status FaissHnswContender::SelectSetting(int index) {
  if (index < 0 || index >= num_settings()) {
    return absl::OutOfRangeError(absl::StrCat("faiss-hnsw: setting ", index,
                                              " of ", num_settings(),
                                              " efSearch values"));
  }
  if (settings_.ef_search[index] < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "faiss-hnsw: efSearch must be >= 1, got ", settings_.ef_search[index]));
  }
  selected_ = index;
  if (index_ != nullptr) index_->hnsw.efSearch = settings_.ef_search[index];
  return absl::OkStatus();
}

std::string FaissHnswContender::setting() const {
  return absl::StrCat("M=", settings_.m, ",efC=", settings_.ef_construction,
                      ",efSearch=", settings_.ef_search[selected_]);
}

}  // namespace peakknn::bench
