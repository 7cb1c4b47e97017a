#include "engine/vector_checks.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/string_view.h"
#include "kernels/finite.h"

namespace peakknn {

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
  if (const size_t bad = kernels::FirstNonFinite(values.data(), values.size());
      bad < values.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(AV(field), "[", bad, "] (vector ", bad / dim,
                     ", dimension ", bad % dim, ") = ", values[bad],
                     ": non-finite values cannot be searched or stored"));
  }
  if (schema.metric == Metric::kCosine) {
    for (int64_t i = 0; i < count; ++i) {
      if (SquaredNorm(values.data() + i * dim, dim) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(AV(field), ": vector ", i,
                         " is all zeros; COSINE needs a non-zero vector"));
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
