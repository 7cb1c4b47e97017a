#include "bench/faiss_contender.h"

#include <faiss/IndexFlat.h>

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/faiss_search.h"

namespace peakknn::bench {

FaissFlatContender::FaissFlatContender(Metric metric) : metric_(metric) {}

FaissFlatContender::~FaissFlatContender() = default;

// FAISS reports errors by throwing faiss::FaissException; they become
// statuses here so none escapes the module.
absl::Status FaissFlatContender::Build(const FloatMatrix& base) {
  try {
    if (metric_ == Metric::kL2) {
      index_ = std::make_unique<faiss::IndexFlatL2>(base.dim);
    } else {
      index_ = std::make_unique<faiss::IndexFlatIP>(base.dim);
    }
    index_->add(base.rows, base.values.data());
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("faiss add: ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<SearchOutput> FaissFlatContender::Search(
    const FloatMatrix& queries, int64_t k) {
  if (index_ == nullptr) {
    return absl::FailedPreconditionError("faiss-flat: Search before Build");
  }
  return FaissSearch(system(), *index_, queries, k);
}

}  // namespace peakknn::bench
