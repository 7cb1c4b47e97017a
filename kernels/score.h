// Score transforms: what the kernels maximise and how it maps back to the
// distance users see. Every metric becomes "maximise q.x + bias(x)":
//
//   IP:     bias = 0,             distance = q.x        (larger is better)
//   COSINE: rows and queries are normalised, bias = 0,
//           distance = q.x = cosine similarity           (larger is better)
//   L2:     bias = -|x|^2 / 2,   distance = |q|^2 - 2 score = |q - x|^2
//           (smaller is better; same neighbours, one matmul: the half-norm
//           trick)
#pragma once

#include <cstdint>

#include "kernels/host_device.h"

namespace peakknn::kernels {

enum class ScoreKind : int32_t { kInnerProduct = 0, kL2 = 1 };

// bias(x) from the row's squared norm.
PEAKKNN_HD float RowBias(ScoreKind kind, float squared_norm) {
  return kind == ScoreKind::kL2 ? -0.5f * squared_norm : 0.0f;
}

// Distance reported to users from a kernel score and the query's squared norm.
PEAKKNN_HD float ScoreToDistance(ScoreKind kind, float score,
                                 float query_squared_norm) {
  if (kind == ScoreKind::kL2) {
    const float d = query_squared_norm - 2.0f * score;
    return d > 0.0f ? d : 0.0f;  // rounding can dip just below zero
  }
  return score;
}

}  // namespace peakknn::kernels
