// Plain views of device memory that the CUDA kernels read and write. No CUDA
// headers: shared by the nvcc-compiled kernels and host C++ callers.
//
// Every pointer here is a device pointer. Rows use the same panel layout as
// the CPU (kernels/layout.h); bins are fold keys (kernels/bin_fold.h).
#pragma once

#include <cstdint>

#include "kernels/scan.h"

namespace peakknn::kernels::cuda {

// Rows [0, rows) of one block mirrored on the device.
struct DeviceRows {
  const void* panels = nullptr;  // float* or uint16_t* (bf16 bits)
  RowType type = RowType::kF32;
  int dim = 0;                     // logical dim; bf16 uses PaddedDimBf16
  const float* bias = nullptr;     // [rows] score = q.x + bias[row]
  const uint64_t* dead = nullptr;  // tombstone bit per row, or nullptr
  int64_t rows = 0;                // rows at or past this are never folded
  int64_t slot_base = 0;           // slot of row 0; multiple of kPanelRows
};

// Queries, row-major [count][stride]: f32 for f32 rows, bf16 bits (padded
// dim, zero pad) for bf16 rows.
struct DeviceQueries {
  const float* f32 = nullptr;
  const uint16_t* bf16 = nullptr;
  int64_t count = 0;
  int64_t stride = 0;
};

// Per-query bins as fold keys, [count][bins] row-major. Zeroed memory is a
// table of empty bins (kEmptyFoldKey == 0).
struct DeviceBins {
  uint64_t* keys = nullptr;
  int64_t bins = 0;
};

}  // namespace peakknn::kernels::cuda
