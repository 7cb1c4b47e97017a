// Packing rows into panel layout: the write side of kernels/layout.h.
//
// PackRows writes a run of row-major f32 rows into consecutive rows of one
// block: their panel elements (f32, or bf16 rounded with FloatToBf16 and the
// pad element of an odd dim set to zero) and their bias (kernels/score.h)
// from the squared norm of the *stored* values, summed in double in order
// d = 0, 1, ..., padded dim - 1, so a row's score is consistent with what
// the scan kernels read. Every kernel set produces the same bits as the
// scalar reference (tests/pack_kernels_test.cc).
//
// SIMD sets transpose whole panels in registers (16 rows x 16 dims for f32)
// and accumulate the 16 norms lane-wise, so each row's sum still runs over
// d in order. A partial panel (a run that starts or ends inside one) is
// written row by row by the scalar code.
//
// Writes touch only the lanes of the rows written: other rows of a partial
// panel may be visible to searches, which read them concurrently.
// Cost: O(count * dim), memory-bound for f32 (reads and writes each row once).
#pragma once

#include <cstdint>

#include "kernels/layout.h"
#include "kernels/score.h"

namespace peakknn::kernels {

// Where PackRows writes: a block's storage from its row 0.
struct PanelTarget {
  void* panels = nullptr;  // float* (kF32) or uint16_t* (kBf16 bits)
  float* bias = nullptr;   // [block rows]
  RowType type = RowType::kF32;
  int dim = 0;  // logical dim; bf16 rows hold PaddedDimBf16(dim) elements
  ScoreKind score = ScoreKind::kInnerProduct;
};

// Writes rows[0 .. count) (row-major [count][dim], finite) to block rows
// [first_row, first_row + count) of `target`.
using PackRowsFn = void (*)(const float* rows, int64_t count, int64_t first_row,
                            const PanelTarget& target);

}  // namespace peakknn::kernels
