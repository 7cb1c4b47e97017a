// AVX2 row packing: a panel is two halves of 8 rows (lanes 0-7, 8-15), each
// packed with 8x8 register transposes of 32-bit elements.
//
// f32: 8 dims of 8 rows per transpose; register j then holds dim d0 + j of
// the half. bf16: 16 dims of a row are rounded to bf16 in integer
// arithmetic (exactly FloatToBf16) and narrowed into 8 (even, odd) pairs;
// the transpose yields 8 lanes of one panel line of pairs per register.
// Norms: lane-wise in double, 4 rows per ymm, in order of d.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/scan_internal.h"
#include "kernels/layout.h"
#include "kernels/pack.h"

namespace peakknn::kernels::detail {
namespace {

// x[i][j] -> x[j][i] for 8 registers of 8 32-bit lanes.
void Transpose8x8(__m256 (&x)[8]) {
  // a[2k] lane group L = r2k[4L], r2k+1[4L], r2k[4L+1], r2k+1[4L+1];
  // a[2k+1] the same for columns 4L+2, 4L+3.
  __m256 a[8];
  for (int k = 0; k < 4; ++k) {
    a[2 * k] = _mm256_unpacklo_ps(x[2 * k], x[2 * k + 1]);
    a[2 * k + 1] = _mm256_unpackhi_ps(x[2 * k], x[2 * k + 1]);
  }
  // b[4m + c] lane group L = column 4L + c of rows 4m .. 4m + 3.
  __m256 b[8];
  for (int m = 0; m < 2; ++m) {
    const __m256d lo0 = _mm256_castps_pd(a[4 * m]);
    const __m256d lo1 = _mm256_castps_pd(a[4 * m + 2]);
    const __m256d hi0 = _mm256_castps_pd(a[4 * m + 1]);
    const __m256d hi1 = _mm256_castps_pd(a[4 * m + 3]);
    b[4 * m] = _mm256_castpd_ps(_mm256_unpacklo_pd(lo0, lo1));
    b[4 * m + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(lo0, lo1));
    b[4 * m + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(hi0, hi1));
    b[4 * m + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(hi0, hi1));
  }
  // Column 4L + c: lane group 0 from b[c], lane group 1 from b[4 + c].
  for (int c = 0; c < 4; ++c) {
    x[c] = _mm256_permute2f128_ps(b[c], b[4 + c], 0x20);
    x[4 + c] = _mm256_permute2f128_ps(b[c], b[4 + c], 0x31);
  }
}

// Lanes [0, n) set, for maskload.
__m256i FirstLanes(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Lane-wise squared norms of 16 rows, in double, four rows per register.
struct Norms16 {
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(),
                    _mm256_setzero_pd(), _mm256_setzero_pd()};

  // Adds v, which holds lanes 8 * half .. 8 * half + 7.
  void Add(int half, __m256 v) {
    const __m256d l = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    const __m256d h = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    acc[2 * half] = _mm256_add_pd(acc[2 * half], _mm256_mul_pd(l, l));
    acc[2 * half + 1] = _mm256_add_pd(acc[2 * half + 1], _mm256_mul_pd(h, h));
  }
  // RowBias of each lane's norm.
  void StoreBias(ScoreKind score, float* bias16) const {
    for (int half = 0; half < 2; ++half) {
      __m256 bias = _mm256_setzero_ps();
      if (score == ScoreKind::kL2) {
        const __m256 norms = _mm256_set_m128(_mm256_cvtpd_ps(acc[2 * half + 1]),
                                             _mm256_cvtpd_ps(acc[2 * half]));
        bias = _mm256_mul_ps(_mm256_set1_ps(-0.5f), norms);
      }
      _mm256_storeu_ps(bias16 + 8 * half, bias);
    }
  }
};

void PackPanelF32(const float* rows16, int64_t panel,
                  const PanelTarget& target) {
  const int dim = target.dim;
  float* out = static_cast<float*>(target.panels) + panel * kPanelRows * dim;
  Norms16 norms;
  for (int d0 = 0; d0 < dim; d0 += 8) {
    const int n = dim - d0 < 8 ? dim - d0 : 8;
    const __m256i mask = FirstLanes(n);
    for (int half = 0; half < 2; ++half) {
      __m256 x[8];
      for (int r = 0; r < 8; ++r) {
        x[r] = _mm256_maskload_ps(rows16 + (8 * half + r) * dim + d0, mask);
      }
      Transpose8x8(x);
      for (int j = 0; j < n; ++j) {
        _mm256_storeu_ps(out + (d0 + j) * kPanelRows + 8 * half, x[j]);
        norms.Add(half, x[j]);
      }
    }
  }
  norms.StoreBias(target.score, target.bias + panel * kPanelRows);
}

// FloatToBf16 of 8 floats, in the low 16 bits of each 32-bit lane.
__m256i RoundToBf16(__m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i odd =
      _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounding = _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), odd);
  return _mm256_srli_epi32(_mm256_add_epi32(u, rounding), 16);
}

void PackPanelBf16(const float* rows16, int64_t panel,
                   const PanelTarget& target) {
  const int dim = target.dim;
  const int padded = PaddedDimBf16(dim);
  uint16_t* out =
      static_cast<uint16_t*>(target.panels) + panel * kPanelRows * padded;
  const __m256i high_half = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  Norms16 norms;
  for (int d0 = 0; d0 < padded; d0 += 16) {
    // Elements past dim load as 0.0f, whose bf16 is the zero pad.
    const __m256i mask_lo = FirstLanes(dim - d0);
    const __m256i mask_hi = FirstLanes(dim - d0 - 8);
    const int pairs = (padded - d0) / 2 < 8 ? (padded - d0) / 2 : 8;
    for (int half = 0; half < 2; ++half) {
      __m256 x[8];
      for (int r = 0; r < 8; ++r) {
        const float* src = rows16 + (8 * half + r) * dim + d0;
        const __m256i lo = RoundToBf16(_mm256_maskload_ps(src, mask_lo));
        const __m256i hi = RoundToBf16(_mm256_maskload_ps(src + 8, mask_hi));
        // packus works per 128-bit lane: [lo0-3 hi0-3 | lo4-7 hi4-7];
        // the permute restores element order: 8 (even, odd) pairs.
        x[r] = _mm256_castsi256_ps(
            _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8));
      }
      Transpose8x8(x);
      for (int k = 0; k < pairs; ++k) {
        const __m256i pair = _mm256_castps_si256(x[k]);
        _mm256_storeu_si256(
            reinterpret_cast<__m256i*>(out + (d0 / 2 + k) * 2 * kPanelRows +
                                       16 * half),
            pair);
        norms.Add(half, _mm256_castsi256_ps(_mm256_slli_epi32(pair, 16)));
        norms.Add(half, _mm256_castsi256_ps(_mm256_and_si256(pair, high_half)));
      }
    }
  }
  norms.StoreBias(target.score, target.bias + panel * kPanelRows);
}

}  // namespace

void Avx2PackRows(const float* rows, int64_t count, int64_t first_row,
                  const PanelTarget& target) {
  PackByPanels(rows, count, first_row, target,
               target.type == RowType::kF32 ? PackPanelF32 : PackPanelBf16);
}

}  // namespace peakknn::kernels::detail
