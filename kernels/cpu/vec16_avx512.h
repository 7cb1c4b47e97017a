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
};

}  // namespace
}  // namespace peakknn::kernels::detail
