#include "engine/vector_checks.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/string_view.h"
#include "kernels/magnitude.h"

namespace peakknn {

float MaxComponent(int dim) {
  // B / dim with B = FLT_MAX / 8; rounded down so the bound holds exactly.
  const double bound = static_cast<double>(std::numeric_limits<float>::max()) /
                       8 / std::max(dim, 1);
  return std::nextafter(static_cast<float>(std::sqrt(bound)), 0.0f);
}

double SquaredNorm(const float* v, int dim) {
  double sum = 0;
  for (int d = 0; d < dim; ++d) sum += static_cast<double>(v[d]) * v[d];
  return sum;
}

absl::Status CheckVectors(const CollectionSchema& schema,
                          std::span<const float> values, int64_t count,
                          std::string_view field) {
  const int dim = schema.dim;
  if (static_cast<int64_t>(values.size()) != count * dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(AV(field), ": holds ", values.size(), " floats; expected ",
                     count, " x dim ", dim, " = ", count * dim));
  }
  const float max_component = MaxComponent(dim);
  if (const size_t bad = kernels::FirstAbove(
          values.data(), values.size(), kernels::MagnitudeBits(max_component));
      bad < values.size()) {
    const std::string where =
        absl::StrCat(AV(field), "[", bad, "] (vector ", bad / dim,
                     ", dimension ", bad % dim, ") = ", values[bad]);
    if (!std::isfinite(values[bad])) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": non-finite values cannot be searched or stored"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": magnitude above ", max_component,
        ", the largest a vector of dim ", dim,
        " may hold (its squared norm, scores and distances must stay "
        "finite in float)"));
  }
  if (schema.metric == Metric::kCosine) {
    for (int64_t i = 0; i < count; ++i) {
      const double norm = std::sqrt(SquaredNorm(values.data() + i * dim, dim));
      if (norm < kMinCosineNorm) {
        return absl::InvalidArgumentError(
            absl::StrCat(AV(field), ": vector ", i, " has norm ", norm,
                         norm == 0 ? " (all zeros)" : "",
                         "; COSINE needs a norm of at least ", kMinCosineNorm,
                         " to normalise it"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckWriteBatch(const CollectionSchema& schema,
                             std::span<const uint64_t> ids,
                             std::span<const float> vectors) {
  if (absl::Status s = CheckVectors(
          schema, vectors, static_cast<int64_t>(ids.size()), "vectors");
      !s.ok()) {
    return s;
  }
  absl::flat_hash_set<uint64_t> seen;
  seen.reserve(ids.size());
  for (uint64_t id : ids) {
    if (!seen.insert(id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("id ", id, " appears more than once in the batch"));
    }
  }
  return absl::OkStatus();
}

}  // namespace peakknn
