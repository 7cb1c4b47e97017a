// A scored slot and the one total order every backend ranks by.
#pragma once

#include <cstdint>

#include "kernels/host_device.h"

namespace peakknn::kernels {

// Scores are "larger is better" in every metric (see kernels/score.h). Empty
// bins hold kNoSlot with score -infinity.
inline constexpr int64_t kNoSlot = -1;

struct Candidate {
  float score;
  int64_t slot;
};

// Higher score first; equal scores go to the lower slot. This makes every
// result deterministic and identical across backends and thread counts.
PEAKKNN_HD bool Better(float a_score, int64_t a_slot, float b_score,
                       int64_t b_slot) {
  return a_score > b_score || (a_score == b_score && a_slot < b_slot);
}

PEAKKNN_HD bool Better(const Candidate& a, const Candidate& b) {
  return Better(a.score, a.slot, b.score, b.slot);
}

}  // namespace peakknn::kernels
