// Stateless checks on vectors entering a collection (rows) or a search
// (queries). They depend only on the schema, so they run once per vector,
// before any lock, on the caller's thread.
//
// Why a magnitude limit. Every score the kernels compute is
// q.x + bias(x) in float (L2: bias = -|x|^2/2), and the distance returned
// for L2 is |q|^2 - 2 score. If every row and query has |v|^2 <= B, then by
// Cauchy-Schwarz each partial sum of q.x is at most B in magnitude, the
// score at most 1.5 B and the distance at most 4 B. With B = FLT_MAX / 8
// all of them are finite with room for rounding. Finite but larger values
// would overflow to inf (rows never found, or found at distance 0 for
// unrelated queries), so they are refused. The check is per component,
// |v_d| <= MaxComponent(dim) = sqrt(B / dim), which implies |v|^2 <= B and
// costs one integer pass shared with the finite check. bf16 rounding can
// raise a magnitude by at most 2^-8 relative, well inside the margin.
//
// COSINE also needs a normalisable vector: 1/|v| must be a finite float, so
// |v| >= kMinCosineNorm (zero vectors included).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "engine/schema.h"

namespace peakknn {

// The largest component magnitude a vector of `dim` may hold (see above):
// 6.5e18 at dim 1, 5.8e17 at dim 128, 1.0e17 at dim 4096.
float MaxComponent(int dim);
// The smallest norm a COSINE vector may have: 1/norm stays a finite float.
inline constexpr double kMinCosineNorm = 1e-37;

// `values` holds `count` whole vectors of schema.dim finite floats, each
// component within +-MaxComponent(dim), and (COSINE) of norm at least
// kMinCosineNorm. `field` names the values in messages ("vectors",
// "queries"); INVALID_ARGUMENT names the element, vector and dimension at
// fault and the bound, e.g. "queries[19] (vector 1, dimension 3) = inf:
// non-finite values cannot be searched or stored".
absl::Status CheckVectors(const CollectionSchema& schema,
                          std::span<const float> values, int64_t count,
                          std::string_view field);

// A write batch: CheckVectors on the rows and no id twice in the batch.
// Whether an id already exists is a question for the collection's state
// (Collection::FirstPresent), asked under its admission lock.
absl::Status CheckWriteBatch(const CollectionSchema& schema,
                             std::span<const uint64_t> ids,
                             std::span<const float> vectors);

// Squared L2 norm in double precision (for COSINE's normalisation and the
// zero check).
double SquaredNorm(const float* v, int dim);

}  // namespace peakknn
