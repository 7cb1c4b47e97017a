// AVX512-BF16 kernels: bf16 rows with VDPBF16PS (two bf16 products per lane
// per instruction, f32 accumulation); f32 rows use the AVX-512F kernels.
//
// Micro-kernel: 12 queries x 2 panels; per pair of dimensions one 32-bit
// broadcast of the query pair and one VDPBF16PS per accumulator.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/scan_driver.h"
#include "kernels/cpu/vec16_avx512.h"
#include "kernels/layout.h"

namespace peakknn::kernels::detail {
namespace {

struct Bf16DotMicro {
  static constexpr int kQueries = 12;
  static constexpr int kPanels = 2;

  template <int MR, int NP>
  static void Scores(const QueryTile& queries, int64_t q0, const RowRange& rows,
                     int64_t row, __m512 (&acc)[MR][NP]) {
    const int padded = PaddedDimBf16(rows.dim);
    const int64_t panel_elems = static_cast<int64_t>(kPanelRows) * padded;
    const uint16_t* panel =
        static_cast<const uint16_t*>(rows.panels) + row * padded;
    const uint16_t* q = queries.bf16 + q0 * queries.stride;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int p = 0; p < NP; ++p) acc[i][p] = _mm512_setzero_ps();
    }
    for (int pair = 0; pair < padded / 2; ++pair) {
      __m512bh x[NP];
#pragma GCC unroll 4
      for (int p = 0; p < NP; ++p) {
        x[p] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(
            panel + p * panel_elems + pair * 2 * kPanelRows));
        if constexpr (MR <= kStreamingQueries) {
          // The same line of the next step (scan_internal.h); prefetching
          // past the rows is harmless.
          __builtin_prefetch(panel + (p + NP) * panel_elems +
                             pair * 2 * kPanelRows);
        }
      }
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        int32_t qpair;
        std::memcpy(&qpair, q + i * queries.stride + 2 * pair, sizeof qpair);
        const __m512bh qb =
            reinterpret_cast<__m512bh>(_mm512_set1_epi32(qpair));
#pragma GCC unroll 4
        for (int p = 0; p < NP; ++p) {
          acc[i][p] = _mm512_dpbf16_ps(acc[i][p], x[p], qb);
        }
      }
    }
  }
};

using Bf16Scanner = Scanner<Avx512Vec16, Bf16DotMicro>;

void PartialReduce(const QueryTile& queries, const RowRange& rows,
                   const BinTable& bins) {
  if (rows.type == RowType::kF32) {
    kAvx512Kernels.partial_reduce(queries, rows, bins);
  } else {
    Bf16Scanner::PartialReduce(queries, rows, bins);
  }
}

void ExactScan(const QueryTile& queries, const RowRange& rows,
               TopKBuffer* buffers) {
  if (rows.type == RowType::kF32) {
    kAvx512Kernels.exact_scan(queries, rows, buffers);
  } else {
    Bf16Scanner::ExactScan(queries, rows, buffers);
  }
}

}  // namespace

// Packing needs no BF16 instruction (its rounding is FloatToBf16's, done in
// integer arithmetic), so the AVX-512 packer serves this set too.
const KernelSet kAvx512Bf16Kernels = {"avx512bf16", PartialReduce, ExactScan,
                                      Avx512PackRows};

}  // namespace peakknn::kernels::detail
