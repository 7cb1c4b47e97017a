#include "bench/faiss_ivf_contender.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/faiss_search.h"

namespace peakknn::bench {

FaissIvfContender::FaissIvfContender(Metric metric, IvfSettings settings)
    : metric_(metric), settings_(std::move(settings)) {}

// index_ refers to quantizer_: it goes first.
FaissIvfContender::~FaissIvfContender() { index_.reset(); }

int64_t FaissIvfContender::NlistFor(int64_t rows) const {
  const int64_t nlist =
      settings_.nlist > 0
          ? settings_.nlist
          : std::llround(4 * std::sqrt(static_cast<double>(rows)));
  return std::clamp<int64_t>(nlist, 1, std::max<int64_t>(rows, 1));
}

absl::Status FaissIvfContender::Build(const FloatMatrix& base) {
  if (settings_.nprobe.empty() || settings_.train_rows_per_list < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "faiss-ivf: nprobe must list at least one value (got ",
        settings_.nprobe.size(), ") and train rows per list be >= 1 (got ",
        settings_.train_rows_per_list, ")"));
  }
  if (base.rows < 1) {
    return absl::InvalidArgumentError("faiss-ivf: no base rows to train on");
  }
  nlist_ = NlistFor(base.rows);
  const faiss::MetricType metric =
      metric_ == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
  try {
    index_.reset();
    if (metric_ == Metric::kL2) {
      quantizer_ = std::make_unique<faiss::IndexFlatL2>(base.dim);
    } else {
      quantizer_ = std::make_unique<faiss::IndexFlatIP>(base.dim);
    }
    index_ = std::make_unique<faiss::IndexIVFFlat>(quantizer_.get(), base.dim,
                                                   nlist_, metric);
    index_->cp.max_points_per_centroid = settings_.train_rows_per_list;
    index_->train(base.rows, base.values.data());
    index_->add(base.rows, base.values.data());
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("faiss-ivf train/add (nlist ", nlist_, "): ", e.what()));
  }
  return SelectSetting(selected_);
}

absl::StatusOr<SearchOutput> FaissIvfContender::Search(
    const FloatMatrix& queries, int64_t k) {
  if (index_ == nullptr) {
    return absl::FailedPreconditionError("faiss-ivf: Search before Build");
  }
  absl::StatusOr<SearchOutput> out = FaissSearch(system(), *index_, queries, k);
  if (!out.ok()) return out;
  out->recall_target = kNotApplicable;  // tuned by nprobe, not by recall
  out->expected_recall = kNotApplicable;
  return out;
}

int FaissIvfContender::num_settings() const {
  return static_cast<int>(settings_.nprobe.size());
}

absl::Status FaissIvfContender::SelectSetting(int index) {
  if (index < 0 || index >= num_settings()) {
    return absl::OutOfRangeError(absl::StrCat("faiss-ivf: setting ", index,
                                              " of ", num_settings(),
                                              " nprobe values"));
  }
  if (settings_.nprobe[index] < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "faiss-ivf: nprobe must be >= 1, got ", settings_.nprobe[index]));
  }
  selected_ = index;
  if (index_ != nullptr) {
    index_->nprobe =
        static_cast<size_t>(std::min(settings_.nprobe[index], nlist_));
  }
  return absl::OkStatus();
}

std::string FaissIvfContender::setting() const {
  const int64_t nprobe = settings_.nprobe[selected_];
  return absl::StrCat("nlist=", nlist_, ",nprobe=",
                      nlist_ > 0 ? std::min(nprobe, nlist_) : nprobe);
}

}  // namespace peakknn::bench
