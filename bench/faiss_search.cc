#include "bench/faiss_search.h"

#include <faiss/Index.h>

#include <exception>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace peakknn::bench {

absl::StatusOr<SearchOutput> FaissSearch(const std::string& system,
                                         const faiss::Index& index,
                                         const FloatMatrix& queries,
                                         int64_t k) {
  if (queries.dim != index.d) {
    return absl::InvalidArgumentError(
        absl::StrCat(system, ": queries have dim ", queries.dim,
                     ", the index was built with dim ", index.d));
  }
  std::vector<float> distances(queries.rows * k);
  std::vector<faiss::Index::idx_t> labels(queries.rows * k);
  try {
    index.search(queries.rows, queries.values.data(), k, distances.data(),
                 labels.data());
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat(system, ": faiss search: ", e.what()));
  }
  SearchOutput out;
  out.rows.assign(labels.begin(), labels.end());  // FAISS uses -1 for none
  return out;
}

}  // namespace peakknn::bench
