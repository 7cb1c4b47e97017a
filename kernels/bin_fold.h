// Fold keys: one (score, slot) candidate packed into a uint64 whose unsigned
// order is exactly kernels::Better, so folding a score into a bin, merging
// two bin tables and ranking the bin winners are all an integer max / sort.
//
//   key = OrderedScoreBits(score) << 32 | (0xFFFFFFFF - slot)
//
// OrderedScoreBits maps floats to uint32 monotonically (flip all bits of
// negatives, set the sign bit of positives); -0 is canonicalised to +0
// first because Better treats them as equal. The low word ranks equal
// scores by lower slot. Key 0 (kEmptyFoldKey) is below every real key and
// marks an empty bin; scores that never take a bin on the CPU either
// (-inf: tombstones; NaN) map to it. Slots must be <= kMaxFoldSlot.
//
// Used by the CUDA backend (bins in device memory are keys, folded with a
// max and combined across thread blocks with a 64-bit atomicMax) and checked
// against Better by CPU tests.
#pragma once

#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/candidate.h"
#include "kernels/host_device.h"

namespace peakknn::kernels {

inline constexpr uint64_t kEmptyFoldKey = 0;
inline constexpr int64_t kMaxFoldSlot = 0xFFFFFFFEll;

PEAKKNN_HD uint32_t OrderedScoreBits(float score) {
  if (score == 0.0f) score = 0.0f;  // -0 == +0 under Better
  const uint32_t u = FloatBits(score);
  return (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
}

PEAKKNN_HD float ScoreFromOrderedBits(uint32_t ordered) {
  return BitsToFloat((ordered & 0x80000000u) != 0 ? (ordered & 0x7FFFFFFFu)
                                                  : ~ordered);
}

// True for the scores a bin accepts: greater than -inf (not NaN).
PEAKKNN_HD bool Foldable(float score) {
  return score > BitsToFloat(0xFF800000u);
}

PEAKKNN_HD uint64_t FoldKey(float score, int64_t slot) {
  if (!Foldable(score)) return kEmptyFoldKey;
  return (static_cast<uint64_t>(OrderedScoreBits(score)) << 32) |
         (0xFFFFFFFFu - static_cast<uint32_t>(slot));
}

// The candidate a non-empty key encodes; kNoSlot and -inf for kEmptyFoldKey.
PEAKKNN_HD Candidate CandidateFromKey(uint64_t key) {
  if (key == kEmptyFoldKey) {
    return Candidate{BitsToFloat(0xFF800000u), kNoSlot};
  }
  return Candidate{
      ScoreFromOrderedBits(static_cast<uint32_t>(key >> 32)),
      static_cast<int64_t>(0xFFFFFFFFu - static_cast<uint32_t>(key))};
}

// Folds one scored slot into a bin: the bin keeps the better candidate. Order
// independent, so thread blocks may fold the same bin in any order.
PEAKKNN_HD void FoldIntoBin(uint64_t* bin, uint64_t key) {
  if (key > *bin) *bin = key;
}

// The first bin-stride row of a block at or after `row` that falls in bin
// `bin`: blocks start at slot_base, so row r is in bin (slot_base + r) mod L.
// Returns a row in [row, row + bins).
PEAKKNN_HD int64_t FirstRowOfBin(int64_t bin, int64_t row, int64_t slot_base,
                                 int64_t bins) {
  const int64_t bin_of_row = (slot_base + row) % bins;
  return row + (bin - bin_of_row + bins) % bins;
}

}  // namespace peakknn::kernels
