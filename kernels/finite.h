// FirstNonFinite: where the first NaN or infinity in a float array is.
//
// Every write and query is checked for finite values, so this runs over
// every ingested byte. A float is non-finite iff its 8 exponent bits are all
// ones; adding 1 to that field (0x00800000) then carries into the sign bit.
// The loop ORs those sums over fixed 64-float chunks with integer adds and
// ORs only, which the compiler vectorises with baseline SSE2 (no -m flags,
// no dispatch); a chunk whose OR has the sign bit set is rescanned to find
// the element. Cost: one read pass, memory-bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace peakknn::kernels {

// Returns the index of the first non-finite value in values[0, n), or n if
// all are finite.
inline size_t FirstNonFinite(const float* values, size_t n) {
  constexpr size_t kChunk = 64;
  constexpr uint32_t kExponent = 0x7f800000u;
  constexpr uint32_t kExponentOne = 0x00800000u;
  constexpr uint32_t kCarry = 0x80000000u;
  const auto flag = [&](size_t i) {
    uint32_t bits;
    std::memcpy(&bits, values + i, sizeof(bits));
    return (bits & kExponent) + kExponentOne;  // sign bit set iff non-finite
  };
  size_t start = 0;
  for (; start + kChunk <= n; start += kChunk) {
    uint32_t any = 0;
    for (size_t j = 0; j < kChunk; ++j) any |= flag(start + j);
    if ((any & kCarry) != 0) break;
  }
  for (size_t i = start; i < n; ++i) {
    if ((flag(i) & kCarry) != 0) return i;
  }
  return n;
}

}  // namespace peakknn::kernels
