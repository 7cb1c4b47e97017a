// Bin table helpers shared by every kernel set.
#include <limits>

#include "kernels/candidate.h"
#include "kernels/cpu/scan_internal.h"
#include "kernels/scan.h"

namespace peakknn::kernels {

void ResetBins(const BinTable& table, int64_t queries) {
  const int64_t n = queries * table.bins;
  for (int64_t i = 0; i < n; ++i) {
    table.scores[i] = -std::numeric_limits<float>::infinity();
    table.slots[i] = kNoSlot;
  }
}

void MergeBins(const BinTable& dst, const BinTable& src, int64_t queries) {
  const int64_t n = queries * dst.bins;
  for (int64_t i = 0; i < n; ++i) {
    if (src.slots[i] != kNoSlot &&
        (dst.slots[i] == kNoSlot ||
         Better(src.scores[i], src.slots[i], dst.scores[i], dst.slots[i]))) {
      dst.scores[i] = src.scores[i];
      dst.slots[i] = src.slots[i];
    }
  }
}

namespace detail {

void FoldIntoBins(float* bin_scores, int64_t* bin_slots, const float* scores16,
                  uint32_t lanes, int64_t first_slot) {
  for (; lanes != 0; lanes &= lanes - 1) {
    const int lane = __builtin_ctz(lanes);
    // Strict '>': rows arrive in increasing slot order, so an equal score
    // must keep the earlier (lower) slot.
    if (scores16[lane] > bin_scores[lane]) {
      bin_scores[lane] = scores16[lane];
      bin_slots[lane] = first_slot + lane;
    }
  }
}

}  // namespace detail
}  // namespace peakknn::kernels
