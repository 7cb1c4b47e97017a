// The dot product of one query and one row stored in panel layout
// (kernels/layout.h): the definition of a score that the CPU scalar kernel
// (kernels/cpu/scan_scalar.cc) and the CUDA FMA-chain kernel both follow, so
// their scores are bit-identical.
//
//   f32:  acc = fma(q[d], x[d], acc) for d = 0 .. dim-1, from acc = 0.
//   bf16: for each pair (2i, 2i+1): the odd product first, then the even one
//         (what VDPBF16PS does). A product of two bf16 values is exact in
//         f32, so each step rounds once.
//
// Cost O(dim). Host and device (PEAKKNN_HD); fmaf is a true fused
// multiply-add on both.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/host_device.h"
#include "kernels/layout.h"

namespace peakknn::kernels {

// `panel` points at the panel's first element; lane = row % kPanelRows.
PEAKKNN_HD float PanelDotF32(const float* query, const float* panel, int lane,
                             int dim) {
  float acc = 0.0f;
  for (int d = 0; d < dim; ++d) {
    acc = fmaf(query[d], panel[d * kPanelRows + lane], acc);
  }
  return acc;
}

// query has padded_dim = PaddedDimBf16(dim) bf16 values (pad is zero).
PEAKKNN_HD float PanelDotBf16(const uint16_t* query, const uint16_t* panel,
                              int lane, int padded_dim) {
  float acc = 0.0f;
  for (int pair = 0; pair < padded_dim / 2; ++pair) {
    const uint16_t* x = panel + pair * 2 * kPanelRows + lane * 2;
    const uint16_t* q = query + 2 * pair;
    acc = fmaf(Bf16ToFloat(q[1]), Bf16ToFloat(x[1]), acc);
    acc = fmaf(Bf16ToFloat(q[0]), Bf16ToFloat(x[0]), acc);
  }
  return acc;
}

}  // namespace peakknn::kernels
