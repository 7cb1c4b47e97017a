// FirstAbove: where the first value whose magnitude exceeds a limit is, in a
// float array. NaN and infinity exceed every finite limit, so one pass
// checks both "finite" and "not too large".
//
// Every write and query is checked, so this runs over every ingested byte.
// For IEEE floats, |x| <= |y| iff the sign-cleared bit patterns compare the
// same way as unsigned integers (NaNs sort above infinity). The loop ORs
// "abs bits > limit bits" flags over fixed 64-float chunks with integer
// operations only, which the compiler vectorises with baseline SSE2 (no -m
// flags, no dispatch); a flagged chunk is rescanned to find the element.
// Cost: one read pass, memory-bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace peakknn::kernels {

// The sign-cleared bit pattern of a finite, non-negative float limit.
inline uint32_t MagnitudeBits(float limit) {
  uint32_t bits;
  std::memcpy(&bits, &limit, sizeof(bits));
  return bits & 0x7fffffffu;
}

// Returns the index of the first value in values[0, n) that is NaN or whose
// magnitude exceeds the float whose MagnitudeBits are `limit_bits`; n if
// none does.
inline size_t FirstAbove(const float* values, size_t n, uint32_t limit_bits) {
  constexpr size_t kChunk = 64;
  const auto above = [&](size_t i) -> uint32_t {
    uint32_t bits;
    std::memcpy(&bits, values + i, sizeof(bits));
    return (bits & 0x7fffffffu) > limit_bits ? 1u : 0u;
  };
  size_t start = 0;
  for (; start + kChunk <= n; start += kChunk) {
    uint32_t any = 0;
    for (size_t j = 0; j < kChunk; ++j) any |= above(start + j);
    if (any != 0) break;
  }
  for (size_t i = start; i < n; ++i) {
    if (above(i) != 0) return i;
  }
  return n;
}

}  // namespace peakknn::kernels
