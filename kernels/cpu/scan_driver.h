// The loop nest shared by every SIMD kernel set: cache blocking, query
// tiling, remainders and the two epilogues (bins, running top-k).
//
// Include only from a SIMD translation unit, and instantiate only with types
// from that file's anonymous namespace: the instantiations then have internal
// linkage, so no copy compiled for one instruction set can be shared with
// another translation unit (see scan_internal.h).
//
// Template parameters:
//   Isa   — 16-lane float vector ops: Vec, AddBiasMaskDead, GreaterThan
//           (vs 16 floats and vs a scalar), Store, and FoldLanes (writes the
//           score and slot of every lane in a mask into 16 bins).
//   Micro — the register-blocked micro-kernel for one row type:
//           kQueries (MR, max queries per tile), kPanels (NP, panels per
//           step) and Scores<MR, NP>(queries, q0, rows, row, acc) which
//           fills acc[i][p] with the dot products of query q0+i and the 16
//           rows of panel `row/16 + p`, in the canonical order
//           (scan_scalar.cc).
//
// Loop order, for rows [begin, full_end) in blocks of ~kRowBlockBytes:
//   for each row block (stays in L2)
//     for each tile of MR queries (stays in L1)
//       for each step of NP panels: MR x NP*16 scores in registers -> epilogue
// Work: O(queries * rows * dim) FLOPs; the score matrix never leaves registers.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/cpu/scan_internal.h"
#include "kernels/layout.h"
#include "kernels/scan.h"

namespace peakknn::kernels::detail {

template <class Isa, class Micro>
struct Scanner {
  using Vec = typename Isa::Vec;

  static uint32_t DeadLanes(const uint64_t* dead, int64_t row) {
    if (dead == nullptr) return 0;
    return static_cast<uint32_t>((dead[row >> 6] >> (row & 63)) & 0xFFFFu);
  }

  // Calls f(std::integral_constant<int, mr>) for a run-time mr in [1, MR].
  template <int MR, class F>
  static void WithQueryCount(int mr, F&& f) {
    if constexpr (MR > 1) {
      if (mr < MR) return WithQueryCount<MR - 1>(mr, f);
    }
    f(std::integral_constant<int, MR>{});
  }

  struct BinsEpilogue {
    const BinTable& bins;
    void operator()(int64_t q, Vec scores, int64_t slot) const {
      const int64_t bin = BinOfSlot(slot, bins.bins);
      float* best = bins.query_scores(q) + bin;
      // Winning lanes are rare with few bins (a bin of N/L rows improves
      // about ln(N/L) times) but common with many (L ~ 10^4 for k = 1000:
      // ~5% of lanes, half the panels), so the fold is vector work too.
      const uint32_t lanes = Isa::GreaterThan(scores, best);
      if (lanes != 0) {
        Isa::FoldLanes(scores, lanes, best, bins.query_slots(q) + bin, slot);
      }
    }
  };

  struct TopKEpilogue {
    TopKBuffer* buffers;
    void operator()(int64_t q, Vec scores, int64_t slot) const {
      const uint32_t lanes = Isa::GreaterThan(scores, buffers[q].threshold);
      if (lanes != 0) {
        alignas(64) float tmp[kPanelRows];
        Isa::Store(tmp, scores);
        PushAboveThreshold(&buffers[q], tmp, lanes, slot);
      }
    }
  };

  template <int MR, int NP, class Epilogue>
  static void Step(const QueryTile& queries, int64_t q0, const RowRange& rows,
                   int64_t row, const Epilogue& epilogue) {
    Vec acc[MR][NP];
    Micro::template Scores<MR, NP>(queries, q0, rows, row, acc);
#pragma GCC unroll 4
    for (int p = 0; p < NP; ++p) {
      const int64_t r = row + p * kPanelRows;
      const uint32_t dead = DeadLanes(rows.dead, r);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        epilogue(q0 + i, Isa::AddBiasMaskDead(acc[i][p], rows.bias + r, dead),
                 rows.slot_base + r);
      }
    }
  }

  template <int MR, class Epilogue>
  static void QueryTileOverRows(const QueryTile& queries, int64_t q0,
                                const RowRange& rows, int64_t begin,
                                int64_t end, const Epilogue& epilogue) {
    constexpr int64_t kStepRows = Micro::kPanels * kPanelRows;
    int64_t row = begin;
    for (; row + kStepRows <= end; row += kStepRows) {
      Step<MR, Micro::kPanels>(queries, q0, rows, row, epilogue);
    }
    for (; row < end; row += kPanelRows) {
      Step<MR, 1>(queries, q0, rows, row, epilogue);
    }
  }

  // Whole panels through the micro-kernel; the scalar reference takes a
  // trailing partial panel.
  template <class Epilogue, class Tail>
  static void Scan(const QueryTile& queries, const RowRange& rows,
                   const Epilogue& epilogue, const Tail& tail) {
    const int64_t full_end =
        rows.begin + (rows.end - rows.begin) / kPanelRows * kPanelRows;
    const int64_t row_bytes =
        static_cast<int64_t>(rows.dim) * (rows.type == RowType::kF32 ? 4 : 2);
    int64_t block_rows = kRowBlockBytes / (row_bytes > 0 ? row_bytes : 1);
    block_rows = block_rows / (2 * kPanelRows) * (2 * kPanelRows);
    if (block_rows < 2 * kPanelRows) block_rows = 2 * kPanelRows;

    for (int64_t b = rows.begin; b < full_end; b += block_rows) {
      const int64_t e = b + block_rows < full_end ? b + block_rows : full_end;
      for (int64_t q0 = 0; q0 < queries.count; q0 += Micro::kQueries) {
        const int64_t left = queries.count - q0;
        const int mr =
            static_cast<int>(left < Micro::kQueries ? left : Micro::kQueries);
        WithQueryCount<Micro::kQueries>(mr, [&](auto mr_constant) {
          QueryTileOverRows<decltype(mr_constant)::value>(queries, q0, rows, b,
                                                          e, epilogue);
        });
      }
    }
    if (full_end < rows.end) {
      RowRange rest = rows;
      rest.begin = full_end;
      tail(queries, rest);
    }
  }

  static void PartialReduce(const QueryTile& queries, const RowRange& rows,
                            const BinTable& bins) {
    Scan(queries, rows, BinsEpilogue{bins},
         [&](const QueryTile& q, const RowRange& rest) {
           ScalarPartialReduce(q, rest, bins);
         });
  }

  static void ExactScan(const QueryTile& queries, const RowRange& rows,
                        TopKBuffer* buffers) {
    Scan(queries, rows, TopKEpilogue{buffers},
         [&](const QueryTile& q, const RowRange& rest) {
           ScalarExactScan(q, rest, buffers);
         });
  }
};

// A kernel set's entry points for one instruction set: the scanner of the
// row type does the work. (Instantiate with the SIMD file's own types.)
template <class F32Scanner, class Bf16Scanner>
struct RowTypeDispatch {
  static void PartialReduce(const QueryTile& queries, const RowRange& rows,
                            const BinTable& bins) {
    if (rows.type == RowType::kF32) {
      F32Scanner::PartialReduce(queries, rows, bins);
    } else {
      Bf16Scanner::PartialReduce(queries, rows, bins);
    }
  }
  static void ExactScan(const QueryTile& queries, const RowRange& rows,
                        TopKBuffer* buffers) {
    if (rows.type == RowType::kF32) {
      F32Scanner::ExactScan(queries, rows, buffers);
    } else {
      Bf16Scanner::ExactScan(queries, rows, buffers);
    }
  }
};

}  // namespace peakknn::kernels::detail
