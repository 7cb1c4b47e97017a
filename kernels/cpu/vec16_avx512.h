// 16-lane float ops on one AVX-512 register, for scan_driver.h.
//
// Included only by the AVX-512 translation units. Deliberately in an unnamed
// namespace: each including file gets its own copy compiled with its own
// flags (see scan_internal.h for why that matters).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <limits>

namespace peakknn::kernels::detail {
namespace {  // NOLINT(build/namespaces): per-ISA copies are intended.

struct Avx512Vec16 {
  using Vec = __m512;

  static Vec AddBiasMaskDead(Vec dots, const float* bias16, uint32_t dead) {
    const Vec scores = _mm512_add_ps(dots, _mm512_loadu_ps(bias16));
    return _mm512_mask_mov_ps(
        scores, static_cast<__mmask16>(dead),
        _mm512_set1_ps(-std::numeric_limits<float>::infinity()));
  }
  static uint32_t GreaterThan(Vec scores, const float* ref16) {
    return _mm512_cmp_ps_mask(scores, _mm512_loadu_ps(ref16), _CMP_GT_OQ);
  }
  static uint32_t GreaterThan(Vec scores, float ref) {
    return _mm512_cmp_ps_mask(scores, _mm512_set1_ps(ref), _CMP_GT_OQ);
  }
  static void Store(float* out16, Vec v) { _mm512_store_ps(out16, v); }
  // best16[l] = scores[l], slots16[l] = first_slot + l for each lane l in
  // `lanes` (lanes already beat best16: masked stores, no per-lane loop).
  static void FoldLanes(Vec scores, uint32_t lanes, float* best16,
                        int64_t* slots16, int64_t first_slot) {
    _mm512_mask_storeu_ps(best16, static_cast<__mmask16>(lanes), scores);
    const __m512i lo =
        _mm512_add_epi64(_mm512_set1_epi64(first_slot),
                         _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
    const __m512i hi = _mm512_add_epi64(lo, _mm512_set1_epi64(8));
    _mm512_mask_storeu_epi64(slots16, static_cast<__mmask8>(lanes), lo);
    _mm512_mask_storeu_epi64(slots16 + 8, static_cast<__mmask8>(lanes >> 8),
                             hi);
  }
};

}  // namespace
}  // namespace peakknn::kernels::detail
