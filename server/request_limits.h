// Hard limits on requests, checked before anything is queued or computed.
// Every violation is INVALID_ARGUMENT naming the field, the value as sent
// (text quoted bounded, numbers exact: base/echo.h) and the limit (the flag
// that sets it).
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/config.h"

namespace peakknn::server {

// PlanRecall's shards: at most this many (the calculator takes an int).
inline constexpr int64_t kMaxPlanShards = (int64_t{1} << 31) - 1;

struct RequestLimits {
  int64_t max_dim;
  int64_t max_k;
  int64_t max_queries_per_request;
  int64_t max_rows_per_write;
  int64_t max_message_bytes;

  static RequestLimits From(const ServerConfig& config);

  // A collection name, by the rules of engine/schema.h
  // ValidateCollectionName; every RPC that names a collection checks it.
  absl::Status CheckName(absl::string_view field, absl::string_view name) const;
  absl::Status CheckDim(int64_t dim) const;
  absl::Status CheckK(int64_t k) const;
  // 0 (collection default) or in (0, 1].
  absl::Status CheckRecallTarget(double target) const;
  // A search's bins: 0 (plan from the recall target) or positive, and not
  // with a recall target.
  absl::Status CheckBins(int64_t bins, double recall_target) const;
  // PlanRecall's arguments besides k: recall_target in (0, 1]; per_bin 0
  // (meaning 1) to --max_k (a bin that keeps k rows already makes the plan
  // exact, and bounding it bounds the calculator's work); shards 0
  // (meaning 1) to kMaxPlanShards.
  absl::Status CheckPlan(double recall_target, int64_t per_bin,
                         int64_t shards) const;
  // A Get of `ids` vectors of `dim` floats must fit one response of
  // --max_message_bytes (checked before any vector is copied).
  absl::Status CheckGetAnswer(int64_t ids, int64_t dim) const;
  // `values` holds whole vectors of `dim`; the count is `expected_count`
  // (when >= 0) and at most `max_count`.
  absl::Status CheckVectors(absl::string_view field,
                            std::span<const float> values, int64_t dim,
                            int64_t expected_count, int64_t max_count,
                            absl::string_view limit_flag) const;
  absl::Status CheckIds(absl::string_view field, int64_t count) const;
};

}  // namespace peakknn::server
