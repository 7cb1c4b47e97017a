// A fixed-capacity block of rows in panel layout (kernels/layout.h), with the
// per-row bias the kernels add (kernels/score.h) and the row's id.
//
// bf16 blocks also keep every row as written, in f32, row-major
// [capacity][dim]: the kernels scan the bf16 panels (half the bytes, twice
// the FLOP/s) and the engine rescores the final candidates against the f32
// rows (engine/rescore.h), so bf16 rounding costs no recall.
//
// Memory: capacity * padded_dim * (4 or 2) bytes of rows + 12 bytes per row
// (bias f32, id u64), plus capacity * dim * 4 bytes of f32 rows in bf16
// blocks (a bf16 collection holds 6 bytes per dimension, 1.5x an f32 one;
// the scan streams only the 2 bf16 bytes). Allocated up front but touched
// only as rows are written, so a mostly empty tail block costs little
// resident memory.
//
// Thread-safety: rows are written once by the collection's single writer
// before the snapshot that makes them visible is published; after that they
// are read-only. Readers never look past their snapshot's row count.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/schema.h"
#include "kernels/scan.h"
#include "kernels/score.h"

namespace peakknn {

class RowBlock {
 public:
  // capacity and slot_base are multiples of kernels::kPanelRows.
  RowBlock(int dim, DType dtype, kernels::ScoreKind score, int64_t capacity,
           int64_t slot_base);

  int dim() const { return dim_; }
  DType dtype() const { return dtype_; }
  int64_t capacity() const { return capacity_; }
  int64_t slot_base() const { return slot_base_; }
  // Bytes reserved for this block (rows, bias, ids).
  int64_t reserved_bytes() const;

  // Stores `vector` (dim floats, already normalised for COSINE) at `row`,
  // rounding to bf16 for bf16 blocks; the bias is computed from the stored
  // values so scores are consistent with what is searched.
  void WriteRow(int64_t row, uint64_t id, const float* vector);
  // Copies row `row` back out as dim floats: the f32 values as written, in
  // bf16 blocks too (from the f32 copy).
  void ReadRow(int64_t row, float* out) const;
  // bf16 blocks: row-major [capacity][dim] f32 rows as written; nullptr in
  // f32 blocks (their panels are already f32).
  const float* f32_rows() const { return f32_rows_.get(); }
  uint64_t id(int64_t row) const { return ids_[row]; }
  // Raw rows, for checkpoints and device mirrors: panel layout, element type
  // f32 (float) or bf16 (uint16_t bits).
  const void* panels() const { return data_.get(); }
  const float* bias() const { return bias_.get(); }
  const uint64_t* ids() const { return ids_.get(); }

  // The kernel view of rows [begin, end) with the given tombstones.
  kernels::RowRange Range(int64_t begin, int64_t end,
                          const uint64_t* dead) const;

 private:
  struct FreeDeleter {
    void operator()(void* p) const;
  };

  const int dim_;
  const DType dtype_;
  const kernels::ScoreKind score_;
  const int64_t capacity_;
  const int64_t slot_base_;
  std::unique_ptr<void, FreeDeleter> data_;  // 64-byte aligned
  std::unique_ptr<float[]> f32_rows_;        // bf16 blocks only
  std::unique_ptr<float[]> bias_;
  std::unique_ptr<uint64_t[]> ids_;
};

}  // namespace peakknn
