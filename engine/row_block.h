// A fixed-capacity block of rows in panel layout (kernels/layout.h), with the
// per-row bias the kernels add (kernels/score.h) and the row's id.
//
// bf16 blocks also keep every row as written, in f32, row-major
// [capacity][dim]: the kernels scan the bf16 panels (half the bytes, twice
// the FLOP/s) and the engine rescores the final candidates against the f32
// rows (engine/rescore.h), so bf16 rounding costs no recall.
//
// Memory: one mapping (engine/resident_memory.h), allocated and faulted in
// whole at construction, holding back to back
//   panels   capacity * padded_dim * (4 f32 | 2 bf16) bytes
//   f32 rows capacity * dim * 4 bytes, bf16 blocks only
//   bias     capacity * 4 bytes
//   ids      capacity * 8 bytes
// rounded up to 4 KiB: per dimension 4 bytes a row (f32) or 6 (bf16, 1.5x;
// the scan streams only the 2 bf16 bytes), plus 12 bytes a row. Every
// region's size is a multiple of 64 bytes, so every region is 64-byte
// aligned. allocated_bytes() is all of it; it is resident from the start,
// so callers size blocks to the data (engine/collection.h).
//
// Thread-safety: rows are written once by the collection's single writer
// before the snapshot that makes them visible is published; after that they
// are read-only. Readers never look past their snapshot's row count, and a
// write touches only the rows it writes (kernels/pack.h), so the rows of a
// partly published panel can be read while the others are written.
#pragma once

#include <cstdint>
#include <span>

#include "base/thread_pool.h"
#include "engine/resident_memory.h"
#include "engine/schema.h"
#include "kernels/scan.h"
#include "kernels/score.h"

namespace peakknn {

class RowBlock {
 public:
  // capacity (> 0) and slot_base are multiples of kernels::kPanelRows.
  // `pool` (optional) faults a large block's memory in in parallel.
  RowBlock(int dim, DType dtype, kernels::ScoreKind score, int64_t capacity,
           int64_t slot_base, ThreadPool* pool);

  // Bytes one row takes in a block of this dim and dtype (all regions).
  static int64_t RowBytes(int dim, DType dtype);

  int dim() const { return dim_; }
  DType dtype() const { return dtype_; }
  kernels::ScoreKind score() const { return score_; }
  int64_t capacity() const { return capacity_; }
  int64_t slot_base() const { return slot_base_; }
  // Bytes allocated for this block: the whole mapping (see above).
  int64_t allocated_bytes() const { return memory_.bytes(); }

  // Stores rows [first_row, first_row + ids.size()) (<= capacity): ids and
  // `vectors`, row-major [ids.size()][dim], already normalised for COSINE;
  // bf16 blocks round them to bf16 and keep the f32 copy. Each bias comes
  // from the values stored, so scores are consistent with what is searched.
  // Whole panels are packed with the best kernel set (kernels/pack.h).
  // Cost: O(rows * dim), about one pass over the rows at memory speed.
  void WriteRows(int64_t first_row, std::span<const uint64_t> ids,
                 const float* vectors);
  // Copies row `row` back out as dim floats: the f32 values as written, in
  // bf16 blocks too (from the f32 copy).
  void ReadRow(int64_t row, float* out) const;
  // bf16 blocks: row-major [capacity][dim] f32 rows as written; nullptr in
  // f32 blocks (their panels are already f32).
  const float* f32_rows() const { return f32_rows_; }
  uint64_t id(int64_t row) const { return ids_[row]; }
  // Raw rows, for checkpoints and device mirrors: panel layout, element type
  // f32 (float) or bf16 (uint16_t bits).
  const void* panels() const { return panels_; }
  const float* bias() const { return bias_; }
  const uint64_t* ids() const { return ids_; }

  // The kernel view of rows [begin, end) with the given tombstones.
  kernels::RowRange Range(int64_t begin, int64_t end,
                          const uint64_t* dead) const;

 private:
  const int dim_;
  const DType dtype_;
  const kernels::ScoreKind score_;
  const int64_t capacity_;
  const int64_t slot_base_;
  const ResidentMemory memory_;
  // Regions of memory_, in this order.
  void* panels_;
  float* f32_rows_;  // bf16 blocks only
  float* bias_;
  uint64_t* ids_;
};

}  // namespace peakknn
