// Row storage layout and bin assignment shared by every backend.
//
// Rows are stored in *panels* of kPanelRows consecutive slots, transposed so
// that one SIMD register holds the same dimension of 16 rows:
//
//   f32:  [panel][d][lane]            lane = row % 16, d in [0, dim)
//   bf16: [panel][d / 2][lane][d % 2]  dim padded to an even number
//
// With this layout a kernel broadcasts one query value and multiplies it by
// 16 rows at once: no horizontal reductions, so the scalar reference and every
// SIMD path accumulate each row's dot product in the same order (d = 0, 1, ...)
// and produce bit-identical scores. bf16 pairs match the operand layout of
// VDPBF16PS (AVX512-BF16) and of the GPU's packed bf16 loads.
//
// Bins are strided: slot s belongs to bin s mod L. L is a multiple of
// kPanelRows and every block starts at a slot that is a multiple of
// kPanelRows, so one panel's 16 slots land in 16 consecutive bins and folding
// a panel into the bins is a lane-wise max.
#pragma once

#include <cstdint>

#include "kernels/host_device.h"

namespace peakknn::kernels {

inline constexpr int kPanelRows = 16;

// Element type of a block's rows: f32, or bf16 stored as uint16_t bits.
enum class RowType : int32_t { kF32 = 0, kBf16 = 1 };

// Number of elements one row occupies in a block, per storage type.
PEAKKNN_HD int PaddedDimF32(int dim) { return dim; }
PEAKKNN_HD int PaddedDimBf16(int dim) { return dim + (dim & 1); }

// Element offset of (row, d) inside a block stored in f32 panel layout.
PEAKKNN_HD int64_t F32PanelOffset(int64_t row, int d, int dim) {
  return (row / kPanelRows) * kPanelRows * static_cast<int64_t>(dim) +
         static_cast<int64_t>(d) * kPanelRows + row % kPanelRows;
}

// Element offset of (row, d) inside a block stored in bf16 panel layout;
// padded_dim is PaddedDimBf16(dim).
PEAKKNN_HD int64_t Bf16PanelOffset(int64_t row, int d, int padded_dim) {
  return (row / kPanelRows) * kPanelRows * static_cast<int64_t>(padded_dim) +
         static_cast<int64_t>(d / 2) * (2 * kPanelRows) +
         (row % kPanelRows) * 2 + (d & 1);
}

// Rounds a requested bin count up to what the kernels support.
PEAKKNN_HD int64_t RoundUpBins(int64_t bins) {
  if (bins < kPanelRows) return kPanelRows;
  return (bins + kPanelRows - 1) / kPanelRows * kPanelRows;
}

PEAKKNN_HD int64_t BinOfSlot(int64_t slot, int64_t bins) { return slot % bins; }

// True when a row is a tombstone in a bitmap with one bit per block row.
PEAKKNN_HD bool IsDead(const uint64_t* dead, int64_t row) {
  return dead != nullptr && ((dead[row >> 6] >> (row & 63)) & 1u) != 0;
}

}  // namespace peakknn::kernels
