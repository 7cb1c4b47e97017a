#include "store/service_core.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace peakknn {

void ReadConsistency::Include(const ReadConsistency& other) {
  strong = strong || other.strong;
  if (after.size() < other.after.size()) after.resize(other.after.size(), 0);
  for (size_t i = 0; i < other.after.size(); ++i) {
    after[i] = std::max(after[i], other.after[i]);
  }
}

absl::Status ServedCollection::AwaitApplied(uint64_t stream_sequence,
                                            absl::Time /*deadline*/) const {
  if (stream_sequence == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "min_applied_sequence=", stream_sequence,
      ": only a shard replica applies a write stream; this server is not "
      "one (it is set by routers for replicas)"));
}

}  // namespace peakknn
