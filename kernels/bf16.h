// bfloat16 <-> float conversion (round to nearest even), host and device.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/host_device.h"

namespace peakknn::kernels {

PEAKKNN_HD uint32_t FloatBits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

PEAKKNN_HD float BitsToFloat(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

// Inputs are finite (the engine validates every vector), so no NaN handling.
PEAKKNN_HD uint16_t FloatToBf16(float f) {
  const uint32_t u = FloatBits(f);
  const uint32_t rounding = 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}

PEAKKNN_HD float Bf16ToFloat(uint16_t h) {
  return BitsToFloat(static_cast<uint32_t>(h) << 16);
}

}  // namespace peakknn::kernels
