#include "engine/schema.h"

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/echo.h"
#include "base/status_macros.h"

namespace peakknn {
namespace {

constexpr int kMaxNameLength = 64;

// Debian 12's Abseil is built with its own string_view type
// (ABSL_OPTION_USE_STD_STRING_VIEW 0), which does not convert from
// std::string_view implicitly.
absl::string_view AbslView(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '-';
}

}  // namespace

absl::StatusOr<Metric> ParseMetric(std::string_view std_text) {
  const absl::string_view text = AbslView(std_text);
  if (absl::EqualsIgnoreCase(text, "l2")) return Metric::kL2;
  if (absl::EqualsIgnoreCase(text, "ip")) return Metric::kInnerProduct;
  if (absl::EqualsIgnoreCase(text, "cosine")) return Metric::kCosine;
  return absl::InvalidArgumentError(
      absl::StrCat("metric must be one of l2, ip, cosine; got \"", text, "\""));
}

std::string_view MetricName(Metric metric) {
  switch (metric) {
    case Metric::kL2:
      return "l2";
    case Metric::kInnerProduct:
      return "ip";
    case Metric::kCosine:
      return "cosine";
  }
  return "unknown";  // an out-of-range enum value cast from an int
}

absl::StatusOr<DType> ParseDType(std::string_view std_text) {
  const absl::string_view text = AbslView(std_text);
  if (absl::EqualsIgnoreCase(text, "f32")) return DType::kF32;
  if (absl::EqualsIgnoreCase(text, "bf16")) return DType::kBf16;
  return absl::InvalidArgumentError(
      absl::StrCat("dtype must be one of f32, bf16; got \"", text, "\""));
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "f32";
    case DType::kBf16:
      return "bf16";
  }
  return "unknown";
}

absl::Status ValidateCollectionName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "collection name must be 1-", kMaxNameLength, " characters long; got ",
        name.size(), " (", QuoteInput(name), ")"));
  }
  if (!absl::ascii_isalnum(static_cast<unsigned char>(name[0]))) {
    return absl::InvalidArgumentError(
        absl::StrCat("collection name must start with a letter or digit; got ",
                     QuoteInput(name)));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "collection name may only contain [A-Za-z0-9_-]; got ",
          QuoteInput(name), " with a bad character at position ", i));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSchema(const CollectionSchema& schema, bool check_name) {
  if (check_name) PEAKKNN_RETURN_IF_ERROR(ValidateCollectionName(schema.name));
  if (schema.dim < 1 || schema.dim > kMaxDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("dim must be in [1, ", kMaxDim, "]; got ", schema.dim));
  }
  if (schema.metric != Metric::kL2 && schema.metric != Metric::kInnerProduct &&
      schema.metric != Metric::kCosine) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric must be L2, IP or COSINE; got enum value ",
                     static_cast<int32_t>(schema.metric)));
  }
  if (schema.dtype != DType::kF32 && schema.dtype != DType::kBf16) {
    return absl::InvalidArgumentError(
        absl::StrCat("dtype must be F32 or BF16; got enum value ",
                     static_cast<int32_t>(schema.dtype)));
  }
  // Written so that NaN fails too.
  if (!(schema.default_recall_target > 0.0 &&
        schema.default_recall_target <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("default_recall_target must be in (0, 1]; got ",
                     ExactDouble(schema.default_recall_target)));
  }
  return absl::OkStatus();
}

}  // namespace peakknn
