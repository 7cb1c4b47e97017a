// What a collection is: its dimension, metric, storage type and defaults.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace peakknn {

enum class Metric : int32_t { kL2 = 0, kInnerProduct = 1, kCosine = 2 };
enum class DType : int32_t { kF32 = 0, kBf16 = 1 };

// "l2" | "ip" | "cosine" (case-insensitive).
absl::StatusOr<Metric> ParseMetric(std::string_view text);
std::string_view MetricName(Metric metric);
// "f32" | "bf16" (case-insensitive).
absl::StatusOr<DType> ParseDType(std::string_view text);
std::string_view DTypeName(DType dtype);

// Hard limits every layer enforces.
inline constexpr int kMaxDim = 16384;
inline constexpr int kMaxK = 16384;

struct CollectionSchema {
  std::string name;
  int dim = 0;
  Metric metric = Metric::kL2;
  DType dtype = DType::kF32;
  // Used when a search passes recall_target = 0. In (0, 1].
  double default_recall_target = 0.95;
};

// A collection name: 1-64 characters of [A-Za-z0-9_-], starting with a
// letter or digit. The message quotes at most a bounded prefix of the name
// (base/echo.h).
absl::Status ValidateCollectionName(std::string_view name);

// Checks dim, recall target and (when check_name) the name
// (ValidateCollectionName).
absl::Status ValidateSchema(const CollectionSchema& schema,
                            bool check_name = true);

}  // namespace peakknn
