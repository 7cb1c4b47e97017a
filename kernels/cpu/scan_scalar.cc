// The scalar reference kernels: the definition of a score.
//
// score(q, row) = fma chain over d = 0..dim-1 starting from 0, then + bias.
// bf16 rows: per pair (2i, 2i+1) the odd product is accumulated first, then
// the even one, which is exactly what VDPBF16PS does (each product of two
// bf16 values is exact in f32, so each step is one rounding). Every SIMD path
// reproduces these scores bit for bit.
//
// Cost: O(queries * rows * dim); no blocking, this is the reference and the
// tail handler, not a fast path.
#include <cmath>
#include <limits>

#include "kernels/bf16.h"
#include "kernels/cpu/scan_internal.h"
#include "kernels/layout.h"
#include "kernels/scan.h"

namespace peakknn::kernels {
namespace {

float DotF32(const float* query, const float* panel, int64_t lane, int dim) {
  float acc = 0.0f;
  for (int d = 0; d < dim; ++d) {
    acc = std::fma(query[d], panel[d * kPanelRows + lane], acc);
  }
  return acc;
}

float DotBf16(const uint16_t* query, const uint16_t* panel, int64_t lane,
              int padded_dim) {
  float acc = 0.0f;
  for (int pair = 0; pair < padded_dim / 2; ++pair) {
    const uint16_t* x = panel + pair * 2 * kPanelRows + lane * 2;
    const uint16_t* q = query + 2 * pair;
    acc = std::fma(Bf16ToFloat(q[1]), Bf16ToFloat(x[1]), acc);
    acc = std::fma(Bf16ToFloat(q[0]), Bf16ToFloat(x[0]), acc);
  }
  return acc;
}

// Score of query q against block row `row`; -inf for tombstones.
float RowScore(const QueryTile& queries, int64_t q, const RowRange& rows,
               int64_t row) {
  if (IsDead(rows.dead, row)) return -std::numeric_limits<float>::infinity();
  const int64_t panel = row / kPanelRows;
  const int64_t lane = row % kPanelRows;
  float dot;
  if (rows.type == RowType::kF32) {
    const float* base = static_cast<const float*>(rows.panels) +
                        panel * kPanelRows * static_cast<int64_t>(rows.dim);
    dot = DotF32(queries.f32 + q * queries.stride, base, lane, rows.dim);
  } else {
    const int padded = PaddedDimBf16(rows.dim);
    const uint16_t* base = static_cast<const uint16_t*>(rows.panels) +
                           panel * kPanelRows * static_cast<int64_t>(padded);
    dot = DotBf16(queries.bf16 + q * queries.stride, base, lane, padded);
  }
  return dot + rows.bias[row];
}

void PartialReduceEntry(const QueryTile& queries, const RowRange& rows,
                        const BinTable& bins) {
  detail::ScalarPartialReduce(queries, rows, bins);
}

void ExactScanEntry(const QueryTile& queries, const RowRange& rows,
                    TopKBuffer* buffers) {
  detail::ScalarExactScan(queries, rows, buffers);
}

}  // namespace

namespace detail {

void ScalarPartialReduce(const QueryTile& queries, const RowRange& rows,
                         const BinTable& bins) {
  for (int64_t row = rows.begin; row < rows.end; ++row) {
    const int64_t slot = rows.slot_base + row;
    const int64_t bin = BinOfSlot(slot, bins.bins);
    for (int64_t q = 0; q < queries.count; ++q) {
      const float score = RowScore(queries, q, rows, row);
      float* best = bins.query_scores(q) + bin;
      if (score > *best) {
        *best = score;
        bins.query_slots(q)[bin] = slot;
      }
    }
  }
}

void ScalarExactScan(const QueryTile& queries, const RowRange& rows,
                     TopKBuffer* buffers) {
  for (int64_t row = rows.begin; row < rows.end; ++row) {
    for (int64_t q = 0; q < queries.count; ++q) {
      const float score = RowScore(queries, q, rows, row);
      if (score > buffers[q].threshold) {
        buffers[q].Push(score, rows.slot_base + row);
      }
    }
  }
}

const KernelSet kScalarKernels = {"scalar", PartialReduceEntry, ExactScanEntry,
                                  ScalarPackRows};

}  // namespace detail
}  // namespace peakknn::kernels
