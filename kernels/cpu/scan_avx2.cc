// AVX2 + FMA kernels, for x86-64 CPUs without AVX-512. A 16-row panel is two
// ymm registers (lanes 0-7 and 8-15).
//
// Micro-kernels (16 ymm registers): f32 6 queries x 1 panel = 12
// accumulators; bf16 4 queries x 1 panel = 8 accumulators plus the widened
// odd/even halves of the panel.
#include <immintrin.h>

#include <cstring>
#include <limits>

#include "kernels/cpu/scan_driver.h"
#include "kernels/layout.h"

namespace peakknn::kernels::detail {
namespace {

struct Vec16 {
  __m256 lo;  // lanes 0-7
  __m256 hi;  // lanes 8-15
};

struct Avx2Vec16 {
  using Vec = Vec16;

  static __m256 DeadMask8(uint32_t dead8) {
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i set =
        _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(dead8)), bit);
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(set, bit));
  }
  static Vec AddBiasMaskDead(Vec dots, const float* bias16, uint32_t dead) {
    Vec s{_mm256_add_ps(dots.lo, _mm256_loadu_ps(bias16)),
          _mm256_add_ps(dots.hi, _mm256_loadu_ps(bias16 + 8))};
    if (dead != 0) {
      const __m256 neg_inf =
          _mm256_set1_ps(-std::numeric_limits<float>::infinity());
      s.lo = _mm256_blendv_ps(s.lo, neg_inf, DeadMask8(dead & 0xFFu));
      s.hi = _mm256_blendv_ps(s.hi, neg_inf, DeadMask8(dead >> 8));
    }
    return s;
  }
  static uint32_t Mask(__m256 lo, __m256 hi) {
    return static_cast<uint32_t>(_mm256_movemask_ps(lo)) |
           (static_cast<uint32_t>(_mm256_movemask_ps(hi)) << 8);
  }
  static uint32_t GreaterThan(Vec s, const float* ref16) {
    return Mask(_mm256_cmp_ps(s.lo, _mm256_loadu_ps(ref16), _CMP_GT_OQ),
                _mm256_cmp_ps(s.hi, _mm256_loadu_ps(ref16 + 8), _CMP_GT_OQ));
  }
  static uint32_t GreaterThan(Vec s, float ref) {
    const __m256 r = _mm256_set1_ps(ref);
    return Mask(_mm256_cmp_ps(s.lo, r, _CMP_GT_OQ),
                _mm256_cmp_ps(s.hi, r, _CMP_GT_OQ));
  }
  static void Store(float* out16, Vec v) {
    _mm256_store_ps(out16, v.lo);
    _mm256_store_ps(out16 + 8, v.hi);
  }
  // AVX2 has no 16-bit-mask stores: the lanes go through the scalar fold.
  static void FoldLanes(Vec scores, uint32_t lanes, float* best16,
                        int64_t* slots16, int64_t first_slot) {
    alignas(64) float tmp[kPanelRows];
    Store(tmp, scores);
    FoldIntoBins(best16, slots16, tmp, lanes, first_slot);
  }
};

struct F32Micro {
  static constexpr int kQueries = 6;
  static constexpr int kPanels = 1;

  template <int MR, int NP>
  static void Scores(const QueryTile& queries, int64_t q0, const RowRange& rows,
                     int64_t row, Vec16 (&acc)[MR][NP]) {
    static_assert(NP == 1);
    const int dim = rows.dim;
    const float* panel = static_cast<const float*>(rows.panels) + row * dim;
    const float* q = queries.f32 + q0 * queries.stride;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = Vec16{_mm256_setzero_ps(), _mm256_setzero_ps()};
    }
    for (int d = 0; d < dim; ++d) {
      const __m256 x_lo = _mm256_loadu_ps(panel + d * kPanelRows);
      const __m256 x_hi = _mm256_loadu_ps(panel + d * kPanelRows + 8);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m256 qb = _mm256_set1_ps(q[i * queries.stride + d]);
        acc[i][0].lo = _mm256_fmadd_ps(qb, x_lo, acc[i][0].lo);
        acc[i][0].hi = _mm256_fmadd_ps(qb, x_hi, acc[i][0].hi);
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

struct Bf16WidenMicro {
  static constexpr int kQueries = 4;
  static constexpr int kPanels = 1;

  template <int MR, int NP>
  static void Scores(const QueryTile& queries, int64_t q0, const RowRange& rows,
                     int64_t row, Vec16 (&acc)[MR][NP]) {
    static_assert(NP == 1);
    const int padded = PaddedDimBf16(rows.dim);
    const uint16_t* panel =
        static_cast<const uint16_t*>(rows.panels) + row * padded;
    const uint16_t* q = queries.bf16 + q0 * queries.stride;
    const __m256i high_mask = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = Vec16{_mm256_setzero_ps(), _mm256_setzero_ps()};
    }
    for (int pair = 0; pair < padded / 2; ++pair) {
      const uint16_t* x = panel + pair * 2 * kPanelRows;
      const __m256i x_lo =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
      const __m256i x_hi =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 16));
      const __m256 odd_lo =
          _mm256_castsi256_ps(_mm256_and_si256(x_lo, high_mask));
      const __m256 odd_hi =
          _mm256_castsi256_ps(_mm256_and_si256(x_hi, high_mask));
      const __m256 even_lo = _mm256_castsi256_ps(_mm256_slli_epi32(x_lo, 16));
      const __m256 even_hi = _mm256_castsi256_ps(_mm256_slli_epi32(x_hi, 16));
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const uint16_t* qp = q + i * queries.stride + 2 * pair;
        const __m256 q_even = _mm256_set1_ps(Bf16Bits(qp[0]));
        const __m256 q_odd = _mm256_set1_ps(Bf16Bits(qp[1]));
        acc[i][0].lo = _mm256_fmadd_ps(q_odd, odd_lo, acc[i][0].lo);
        acc[i][0].hi = _mm256_fmadd_ps(q_odd, odd_hi, acc[i][0].hi);
        acc[i][0].lo = _mm256_fmadd_ps(q_even, even_lo, acc[i][0].lo);
        acc[i][0].hi = _mm256_fmadd_ps(q_even, even_hi, acc[i][0].hi);
      }
    }
  }
};

using F32Scanner = Scanner<Avx2Vec16, F32Micro>;
using Bf16Scanner = Scanner<Avx2Vec16, Bf16WidenMicro>;

using Entry = RowTypeDispatch<F32Scanner, Bf16Scanner>;

}  // namespace

const KernelSet kAvx2Kernels = {"avx2", Entry::PartialReduce, Entry::ExactScan,
                                Avx2PackRows};

}  // namespace peakknn::kernels::detail
