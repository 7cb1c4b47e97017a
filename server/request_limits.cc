#include "server/request_limits.h"

#include "absl/strings/str_cat.h"
#include "base/echo.h"
#include "base/string_view.h"
#include "engine/schema.h"

namespace peakknn::server {

RequestLimits RequestLimits::From(const ServerConfig& config) {
  return {config.max_dim, config.max_k, config.max_queries_per_request,
          config.max_rows_per_write, config.max_message_bytes};
}

absl::Status RequestLimits::CheckName(absl::string_view field,
                                      absl::string_view name) const {
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must name a collection (got an empty string)"));
  }
  if (absl::Status s = ValidateCollectionName(SV(name)); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status RequestLimits::CheckDim(int64_t dim) const {
  if (dim < 1 || dim > max_dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schema.dim=", dim, ": must be in [1, ", max_dim, "] (--max_dim)"));
  }
  return absl::OkStatus();
}

absl::Status RequestLimits::CheckK(int64_t k) const {
  if (k < 1 || k > max_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("k=", k, ": must be in [1, ", max_k, "] (--max_k)"));
  }
  return absl::OkStatus();
}

absl::Status RequestLimits::CheckRecallTarget(double target) const {
  if (!(target >= 0 && target <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("recall_target=", ExactDouble(target),
                     ": must be 0 (collection default) or in (0, 1]"));
  }
  return absl::OkStatus();
}

absl::Status RequestLimits::CheckBins(int64_t bins,
                                      double recall_target) const {
  if (bins < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bins=", bins, ": must be 0 (plan from recall_target) or positive"));
  }
  if (bins > 0 && recall_target != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bins=", bins, " and recall_target=", ExactDouble(recall_target),
        ": set at most one of them"));
  }
  return absl::OkStatus();
}

absl::Status RequestLimits::CheckPlan(double recall_target, int64_t per_bin,
                                      int64_t shards) const {
  if (!(recall_target > 0 && recall_target <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "recall_target=", ExactDouble(recall_target), ": must be in (0, 1]"));
  }
  if (per_bin < 0 || per_bin > max_k) {
    return absl::InvalidArgumentError(absl::StrCat(
        "per_bin=", per_bin, ": must be in [0, ", max_k,
        "] (0 means 1; at most --max_k: a bin that keeps k rows is exact)"));
  }
  if (shards < 0 || shards > kMaxPlanShards) {
    return absl::InvalidArgumentError(
        absl::StrCat("shards=", shards, ": must be in [0, ", kMaxPlanShards,
                     "] (0 means 1)"));
  }
  return absl::OkStatus();
}

absl::Status RequestLimits::CheckGetAnswer(int64_t ids, int64_t dim) const {
  // Per answered id: the packed values plus at most 24 bytes of framing
  // (entry tag and length, id, found, values tag and length).
  const int64_t per_id = 4 * dim + 24;
  if (ids > max_message_bytes / per_id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ids: ", ids, " ids of dim ", dim, " would answer up to ", ids * per_id,
        " bytes; at most --max_message_bytes=", max_message_bytes,
        ", so at most ", max_message_bytes / per_id, " ids per Get"));
  }
  return absl::OkStatus();
}

absl::Status RequestLimits::CheckVectors(absl::string_view field,
                                         std::span<const float> values,
                                         int64_t dim, int64_t expected_count,
                                         int64_t max_count,
                                         absl::string_view limit_flag) const {
  const int64_t size = static_cast<int64_t>(values.size());
  if (size == 0 || size % dim != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": holds ", size,
                     " floats; must be a positive multiple of the "
                     "collection's dim ",
                     dim));
  }
  const int64_t count = size / dim;
  if (expected_count >= 0 && count != expected_count) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": holds ", count, " vectors of dim ", dim,
                     " but ids holds ", expected_count));
  }
  if (count > max_count) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", count, " vectors; at most ", max_count, " (",
                     limit_flag, ")"));
  }
  return absl::OkStatus();
}

absl::Status RequestLimits::CheckIds(absl::string_view field,
                                     int64_t count) const {
  if (count == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must hold at least one id"));
  }
  if (count > max_rows_per_write) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", count, " ids; at most ", max_rows_per_write,
                     " (--max_rows_per_write)"));
  }
  return absl::OkStatus();
}

}  // namespace peakknn::server
