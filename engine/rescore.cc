#include "engine/rescore.h"

#include <algorithm>
#include <cmath>

namespace peakknn {

int64_t RescoreCandidates(int64_t k, int64_t bins) {
  return std::min(2 * k, std::max(k, bins));
}

int64_t RescoreF32(const Snapshot& snapshot, kernels::ScoreKind kind,
                   const float* query, int dim,
                   std::span<kernels::Candidate> candidates, int64_t k,
                   kernels::Candidate* out) {
  for (kernels::Candidate& c : candidates) {
    const BlockView* view = snapshot.FindBlock(c.slot);
    const float* row =
        view->block->f32_rows() + (c.slot - view->block->slot_base()) * dim;
    // The f32 kernels' score (kernels/panel_dot.h: an fma chain over
    // d = 0, 1, ...) and RowBlock's bias (norm summed in double), so a bf16
    // collection's rescored scores equal an f32 collection's bit for bit.
    float dot = 0;
    double squared_norm = 0;
    for (int d = 0; d < dim; ++d) {
      dot = std::fma(query[d], row[d], dot);
      squared_norm += static_cast<double>(row[d]) * row[d];
    }
    c.score = dot + kernels::RowBias(kind, static_cast<float>(squared_norm));
  }
  const int64_t kept =
      std::min<int64_t>(k, static_cast<int64_t>(candidates.size()));
  const auto better = [](const kernels::Candidate& a,
                         const kernels::Candidate& b) {
    return kernels::Better(a, b);
  };
  std::partial_sort(candidates.begin(), candidates.begin() + kept,
                    candidates.end(), better);
  std::copy(candidates.begin(), candidates.begin() + kept, out);
  return kept;
}

}  // namespace peakknn
