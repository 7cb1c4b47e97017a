// AVX-512F kernels: f32 rows with FMA; bf16 rows widened to f32 in registers
// (for CPUs without AVX512-BF16; scan_avx512_bf16.cc has the native path).
//
// Micro-kernel: 12 queries x 2 panels (32 rows) = 24 zmm accumulators, one
// broadcast per query per dimension, two panel loads per dimension.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/scan_driver.h"
#include "kernels/cpu/vec16_avx512.h"
#include "kernels/layout.h"

namespace peakknn::kernels::detail {
namespace {

struct F32Micro {
  static constexpr int kQueries = 12;
  static constexpr int kPanels = 2;

  template <int MR, int NP>
  static void Scores(const QueryTile& queries, int64_t q0, const RowRange& rows,
                     int64_t row, __m512 (&acc)[MR][NP]) {
    const int dim = rows.dim;
    const int64_t panel_elems = static_cast<int64_t>(kPanelRows) * dim;
    const float* panel = static_cast<const float*>(rows.panels) + row * dim;
    const float* q = queries.f32 + q0 * queries.stride;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int p = 0; p < NP; ++p) acc[i][p] = _mm512_setzero_ps();
    }
    for (int d = 0; d < dim; ++d) {
      __m512 x[NP];
#pragma GCC unroll 4
      for (int p = 0; p < NP; ++p) {
        x[p] = _mm512_loadu_ps(panel + p * panel_elems + d * kPanelRows);
        if constexpr (MR <= kStreamingQueries) {
          // The same line of the next step (scan_internal.h); prefetching
          // past the rows is harmless.
          __builtin_prefetch(panel + (p + NP) * panel_elems + d * kPanelRows);
        }
      }
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m512 qb = _mm512_set1_ps(q[i * queries.stride + d]);
#pragma GCC unroll 4
        for (int p = 0; p < NP; ++p) {
          acc[i][p] = _mm512_fmadd_ps(qb, x[p], acc[i][p]);
        }
      }
    }
  }
};

float Bf16Bits(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// bf16 pairs widened in registers: the odd element of each pair is the high
// half of the 32-bit lane, the even element the low half.
struct Bf16WidenMicro {
  static constexpr int kQueries = 8;
  static constexpr int kPanels = 2;

  template <int MR, int NP>
  static void Scores(const QueryTile& queries, int64_t q0, const RowRange& rows,
                     int64_t row, __m512 (&acc)[MR][NP]) {
    const int padded = PaddedDimBf16(rows.dim);
    const int64_t panel_elems = static_cast<int64_t>(kPanelRows) * padded;
    const uint16_t* panel =
        static_cast<const uint16_t*>(rows.panels) + row * padded;
    const uint16_t* q = queries.bf16 + q0 * queries.stride;
    const __m512i high_mask = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int p = 0; p < NP; ++p) acc[i][p] = _mm512_setzero_ps();
    }
    for (int pair = 0; pair < padded / 2; ++pair) {
      __m512 odd[NP], even[NP];
#pragma GCC unroll 4
      for (int p = 0; p < NP; ++p) {
        const __m512i x =
            _mm512_loadu_si512(panel + p * panel_elems + pair * 2 * kPanelRows);
        odd[p] = _mm512_castsi512_ps(_mm512_and_si512(x, high_mask));
        // The zero-masked shift avoids a GCC 12 false "uninitialized" warning.
        even[p] = _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, x, 16));
      }
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const uint16_t* qp = q + i * queries.stride + 2 * pair;
        const __m512 q_even = _mm512_set1_ps(Bf16Bits(qp[0]));
        const __m512 q_odd = _mm512_set1_ps(Bf16Bits(qp[1]));
#pragma GCC unroll 4
        for (int p = 0; p < NP; ++p) {
          acc[i][p] = _mm512_fmadd_ps(q_odd, odd[p], acc[i][p]);
          acc[i][p] = _mm512_fmadd_ps(q_even, even[p], acc[i][p]);
        }
      }
    }
  }
};

using F32Scanner = Scanner<Avx512Vec16, F32Micro>;
using Bf16Scanner = Scanner<Avx512Vec16, Bf16WidenMicro>;

using Entry = RowTypeDispatch<F32Scanner, Bf16Scanner>;

}  // namespace

const KernelSet kAvx512Kernels = {"avx512", Entry::PartialReduce,
                                  Entry::ExactScan, Avx512PackRows};

}  // namespace peakknn::kernels::detail
