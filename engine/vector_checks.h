// Stateless checks on vectors entering a collection (rows) or a search
// (queries). They depend only on the schema, so they run once per vector,
// before any lock, on the caller's thread.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "engine/schema.h"

namespace peakknn {

// `values` holds `count` whole vectors of schema.dim finite floats, each
// non-zero under COSINE. `field` names the values in messages ("vectors",
// "queries"); INVALID_ARGUMENT names the element, vector and dimension at
// fault, e.g. "queries[19] (vector 1, dimension 3) = inf: non-finite values
// cannot be searched or stored".
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
