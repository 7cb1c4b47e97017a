// Hard limits on requests, checked before anything is queued or computed.
// Every violation is INVALID_ARGUMENT naming the field, the value and the
// limit (the flag that sets it).
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/config.h"

namespace peakknn::server {

struct RequestLimits {
  int64_t max_dim;
  int64_t max_k;
  int64_t max_queries_per_request;
  int64_t max_rows_per_write;

  static RequestLimits From(const ServerConfig& config);

  absl::Status CheckName(absl::string_view field, absl::string_view name) const;
  absl::Status CheckDim(int64_t dim) const;
  absl::Status CheckK(int64_t k) const;
  // 0 (collection default) or in (0, 1].
  absl::Status CheckRecallTarget(double target) const;
  // `values` holds whole vectors of `dim`; the count is `expected_count`
  // (when >= 0) and at most `max_count`.
  absl::Status CheckVectors(absl::string_view field,
                            std::span<const float> values, int64_t dim,
                            int64_t expected_count, int64_t max_count,
                            absl::string_view limit_flag) const;
  absl::Status CheckIds(absl::string_view field, int64_t count) const;
};

}  // namespace peakknn::server
