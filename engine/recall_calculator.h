// The recall-guarantee calculator (DESIGN.md section 1).
//
// With N rows assigned to L bins at random and the best `per_bin` rows of
// each bin kept, the element of true rank r survives iff fewer than per_bin
// of the r-1 better elements share its bin. For per_bin = 1:
//
//   E[recall@k]       = (L/k) * (1 - (1 - 1/L)^k)
//   worst-rank recall = P(rank k survives) = (1 - 1/L)^(k-1)
//
// For per_bin > 1 the count of better elements in the same bin is
// Binomial(r-1, 1/L) (the large-N limit of Samaga et al.'s hypergeometric
// form). Bins compose: S shards with L_i bins each behave like one collection
// of sum(L_i) bins, so a router plans the total and gives each shard its
// share. Pure functions; no state.
//
// Cost: ExpectedRecall and WorstRankRecall sum O(sqrt(k / L) + 144) terms
// (each a few lgamma calls), independent of per_bin; PlanRecall evaluates
// ExpectedRecall O(log n) times.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace peakknn {

struct RecallPlan {
  bool exact = false;          // true: scan with an exact top-k (L = N)
  int64_t bins = 0;            // total bins L over all shards (N if exact)
  int64_t bins_per_shard = 0;  // ceil(L / shards), a multiple of 16
  int32_t per_bin = 1;
  double expected_recall = 1.0;  // E[recall@k] with the bins actually used
  double worst_rank_recall = 1.0;
  // L from the conservative worst-rank form XLA's ApproxTopK uses,
  // L = ceil((k-1) / -ln(target)), for comparison.
  int64_t conservative_bins = 0;
};

// Smallest bin count whose expected recall@k meets recall_target; exact when
// that many bins would be no cheaper than an exact scan (L >= N) or when
// recall_target == 1. Errors: n < 0, k < 1, recall_target outside (0, 1],
// per_bin < 1, shards < 1.
absl::StatusOr<RecallPlan> PlanRecall(int64_t n, int64_t k,
                                      double recall_target, int per_bin = 1,
                                      int shards = 1);

// The plan for scanning n rows with `bins` bins (rounded up to a multiple of
// 16), one kept per bin: exact when that reaches n. What a shard runs for
// its share of a cluster plan (router/sharded_search.h). INVALID_ARGUMENT
// for n < 0, k < 1 or bins < 1.
absl::StatusOr<RecallPlan> PlanForBins(int64_t n, int64_t k, int64_t bins);

// E[recall@k] for L bins keeping per_bin per bin (the inverse of PlanRecall).
double ExpectedRecall(int64_t n, int64_t k, int64_t bins, int per_bin = 1);

// Probability that the element of true rank k survives.
double WorstRankRecall(int64_t n, int64_t k, int64_t bins, int per_bin = 1);

}  // namespace peakknn
