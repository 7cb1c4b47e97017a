// f32 rescoring of the final candidates of a bf16 scan.
//
// bf16 rows and queries carry 8 bits of mantissa, so near-ties around rank k
// swap and the bf16 top-k misses true neighbours the bins kept (measured
// recall@10 0.946 for expected 0.95 at 1M x 128). The scan therefore returns
// RescoreCandidates(k, L) > k candidates per query; RescoreF32 recomputes
// their scores from the block's f32 rows (RowBlock::f32_rows) against the f32
// query and keeps the best k. Recall then is the bins' analytic recall: a
// true neighbour is lost only if it lost its bin or fell below rank k' by
// bf16 score, which a margin of k extra candidates makes negligible.
//
// Cost per query: k' * dim * 2 FLOPs and k' random row reads (k' * dim * 4
// bytes), against N * dim * 2 FLOPs for the scan.
#pragma once

#include <cstdint>
#include <span>

#include "engine/snapshot.h"
#include "kernels/candidate.h"
#include "kernels/score.h"

namespace peakknn {

// Candidates a bf16 scan returns for k results with `bins` bin winners
// (live rows when exact): min(2k, max(k, bins)).
int64_t RescoreCandidates(int64_t k, int64_t bins);

// Rescores `candidates` (slots of bf16 blocks of `snapshot`) for one query
// in f32: score = query . x + RowBias(kind, |x|^2), both from the f32 row, the
// same score an f32 collection's kernels compute. Writes the best
// min(k, candidates.size()) to `out`, best first (kernels::Better), and
// returns how many. `query` holds dim floats, prepared (normalised for
// COSINE). `candidates` is reordered.
int64_t RescoreF32(const Snapshot& snapshot, kernels::ScoreKind kind,
                   const float* query, int dim,
                   std::span<kernels::Candidate> candidates, int64_t k,
                   kernels::Candidate* out);

}  // namespace peakknn
