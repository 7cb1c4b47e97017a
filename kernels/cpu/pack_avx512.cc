// AVX-512 (F, BW, DQ) row packing: one panel at a time, 16 rows x 16
// elements per 16x16 register transpose.
//
// f32: 16 dims of 16 rows are 16 zmm loads (masked past dim), transposed so
// register j holds dim d0 + j of the 16 rows: one store per panel line.
// bf16: 32 dims of a row are rounded to bf16 in integer arithmetic (exactly
// FloatToBf16) and narrowed into one zmm of 16 (even, odd) pairs; the
// transpose then yields one panel line of 16 pairs per register.
// Norms: lane-wise in double, 8 rows per zmm, in order of d.
// GCC 12.2 reports the deliberately undefined operands that intrinsics such
// as _mm512_unpacklo_ps pass internally (_mm512_undefined_ps) as used
// uninitialised once inlined (GCC bug 105593, fixed in 12.3). Clang (the
// fuzz build) has no -Wmaybe-uninitialized, and an unknown one is an error.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "kernels/cpu/scan_internal.h"
#include "kernels/layout.h"
#include "kernels/pack.h"

namespace peakknn::kernels::detail {
namespace {

// x[i][j] -> x[j][i] for 16 registers of 16 32-bit lanes.
void Transpose16x16(__m512 (&x)[16]) {
  // Interleave rows pairwise: a[2k] lane group L = r2k[4L], r2k+1[4L],
  // r2k[4L+1], r2k+1[4L+1]; a[2k+1] the same for columns 4L+2, 4L+3.
  __m512 a[16];
  for (int k = 0; k < 8; ++k) {
    a[2 * k] = _mm512_unpacklo_ps(x[2 * k], x[2 * k + 1]);
    a[2 * k + 1] = _mm512_unpackhi_ps(x[2 * k], x[2 * k + 1]);
  }
  // b[4m + c] lane group L = column 4L + c of rows 4m .. 4m + 3.
  __m512 b[16];
  for (int m = 0; m < 4; ++m) {
    const __m512d lo0 = _mm512_castps_pd(a[4 * m]);
    const __m512d lo1 = _mm512_castps_pd(a[4 * m + 2]);
    const __m512d hi0 = _mm512_castps_pd(a[4 * m + 1]);
    const __m512d hi1 = _mm512_castps_pd(a[4 * m + 3]);
    b[4 * m] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo0, lo1));
    b[4 * m + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo0, lo1));
    b[4 * m + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(hi0, hi1));
    b[4 * m + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(hi0, hi1));
  }
  // Column 4L + c wants lane group M = b[4M + c] lane group L: a 4x4
  // transpose of 128-bit lane groups, for each c.
  for (int c = 0; c < 4; ++c) {
    const __m512 e0 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0x44);
    const __m512 e1 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0xEE);
    const __m512 e2 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0x44);
    const __m512 e3 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0xEE);
    x[c] = _mm512_shuffle_f32x4(e0, e2, 0x88);
    x[4 + c] = _mm512_shuffle_f32x4(e0, e2, 0xDD);
    x[8 + c] = _mm512_shuffle_f32x4(e1, e3, 0x88);
    x[12 + c] = _mm512_shuffle_f32x4(e1, e3, 0xDD);
  }
}

__mmask16 FirstLanes(int n) {
  if (n <= 0) return 0;
  return n >= 16 ? static_cast<__mmask16>(0xFFFF)
                 : static_cast<__mmask16>((1u << n) - 1);
}

// Lane-wise squared norms of 16 rows, in double.
struct Norms16 {
  __m512d lo = _mm512_setzero_pd();  // rows 0-7
  __m512d hi = _mm512_setzero_pd();  // rows 8-15

  void Add(__m512 v) {
    const __m512d l = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d h = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
    lo = _mm512_add_pd(lo, _mm512_mul_pd(l, l));
    hi = _mm512_add_pd(hi, _mm512_mul_pd(h, h));
  }
  // RowBias of each lane's norm.
  void StoreBias(ScoreKind score, float* bias16) const {
    if (score != ScoreKind::kL2) {
      _mm512_storeu_ps(bias16, _mm512_setzero_ps());
      return;
    }
    const __m512 norms = _mm512_insertf32x8(
        _mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
    _mm512_storeu_ps(bias16, _mm512_mul_ps(_mm512_set1_ps(-0.5f), norms));
  }
};

void PackPanelF32(const float* rows16, int64_t panel,
                  const PanelTarget& target) {
  const int dim = target.dim;
  float* out = static_cast<float*>(target.panels) + panel * kPanelRows * dim;
  Norms16 norms;
  for (int d0 = 0; d0 < dim; d0 += 16) {
    const int n = dim - d0 < 16 ? dim - d0 : 16;
    const __mmask16 mask = FirstLanes(n);
    __m512 x[16];
    for (int r = 0; r < 16; ++r) {
      x[r] = _mm512_maskz_loadu_ps(mask, rows16 + r * dim + d0);
    }
    Transpose16x16(x);
    for (int j = 0; j < n; ++j) {
      _mm512_storeu_ps(out + (d0 + j) * kPanelRows, x[j]);
      norms.Add(x[j]);
    }
  }
  norms.StoreBias(target.score, target.bias + panel * kPanelRows);
}

// FloatToBf16 of 16 floats, in the low 16 bits of each 32-bit lane.
__m512i RoundToBf16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i odd =
      _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounding = _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd);
  return _mm512_srli_epi32(_mm512_add_epi32(u, rounding), 16);
}

void PackPanelBf16(const float* rows16, int64_t panel,
                   const PanelTarget& target) {
  const int dim = target.dim;
  const int padded = PaddedDimBf16(dim);
  uint16_t* out =
      static_cast<uint16_t*>(target.panels) + panel * kPanelRows * padded;
  const __m512i high_half = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  Norms16 norms;
  for (int d0 = 0; d0 < padded; d0 += 32) {
    // Elements past dim load as 0.0f, whose bf16 is the zero pad.
    const int n = dim - d0;
    const __mmask16 mask_lo = FirstLanes(n);
    const __mmask16 mask_hi = FirstLanes(n - 16);
    const int pairs = (padded - d0) / 2 < 16 ? (padded - d0) / 2 : 16;
    __m512 x[16];
    for (int r = 0; r < 16; ++r) {
      const float* src = rows16 + r * dim + d0;
      const __m256i lo = _mm512_cvtepi32_epi16(
          RoundToBf16(_mm512_maskz_loadu_ps(mask_lo, src)));
      const __m256i hi = _mm512_cvtepi32_epi16(
          RoundToBf16(_mm512_maskz_loadu_ps(mask_hi, src + 16)));
      // 32 bf16 in element order = 16 32-bit (even, odd) pairs.
      x[r] = _mm512_castsi512_ps(
          _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
    }
    Transpose16x16(x);
    for (int k = 0; k < pairs; ++k) {
      const __m512i pair = _mm512_castps_si512(x[k]);
      _mm512_storeu_si512(out + (d0 / 2 + k) * 2 * kPanelRows, pair);
      norms.Add(_mm512_castsi512_ps(_mm512_slli_epi32(pair, 16)));
      norms.Add(_mm512_castsi512_ps(_mm512_and_si512(pair, high_half)));
    }
  }
  norms.StoreBias(target.score, target.bias + panel * kPanelRows);
}

}  // namespace

void Avx512PackRows(const float* rows, int64_t count, int64_t first_row,
                    const PanelTarget& target) {
  PackByPanels(rows, count, first_row, target,
               target.type == RowType::kF32 ? PackPanelF32 : PackPanelBf16);
}

}  // namespace peakknn::kernels::detail
