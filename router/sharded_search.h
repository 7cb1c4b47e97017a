// How the router searches a collection split over shards so that the whole
// keeps the promise one node makes: planning each shard's share of the bins,
// and merging the shards' answers.
//
// Planning: the recall calculator's bins compose (engine/recall_calculator.h):
// S shards scanning L_1..L_S bins each behave like one collection of
// sum(L_i) bins, whatever the rows per shard. So the router plans L for the
// cluster's total live rows, k and the target, and each shard scans
// ceil(L / S) bins (a multiple of 16): S * ceil(L / S) >= L, so the
// expected recall is at least the planned one, and it is reported for the
// bins actually used. A shard whose share reaches its own live rows scans
// exactly, which only raises recall. Exact (target 1, or L >= N) stays
// exact: every shard returns its exact top-k, and each of the global top-k
// is in its own shard's top-k.
//
// Merging: each shard answers the same queries with at most k results per
// query, best first; the merge keeps the best k per query over all shards,
// ordered as one node orders them: by distance (ascending for L2, descending
// for inner product and cosine, whose "distance" is a similarity), then by
// lower id. Ids are disjoint across shards (each id lives on one shard).
//
// Cost: the merge is O(Q * S * k * log(S * k)) time and O(Q * S * k) memory.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/schema.h"

namespace peakknn {

struct ShardedSearchPlan {
  bool exact = false;          // every shard runs an exact top-k
  int64_t bins_per_shard = 0;  // ceil(L / S), a multiple of 16 (0 if exact)
  // For the bins actually used, S * bins_per_shard, over total_live_rows
  // (1 when exact).
  double expected_recall = 1.0;
  double worst_rank_recall = 1.0;
};

// The plan for `shards` shards holding `total_live_rows` rows together.
// Errors as PlanRecall's (negative rows, k < 1, target outside (0, 1],
// shards < 1).
absl::StatusOr<ShardedSearchPlan> PlanShardedSearch(int64_t total_live_rows,
                                                    int64_t k,
                                                    double recall_target,
                                                    int shards);

// One shard's answer to a batch of queries, query-major: query q's results
// are ids / distances [q * k, q * k + counts[q]), best first.
struct ShardAnswer {
  int64_t k = 0;
  std::vector<uint64_t> ids;
  std::vector<float> distances;  // the metric's own terms (kernels/score.h)
  std::vector<int32_t> counts;
};

// The best `k` per query over `answers` (same layout as ShardAnswer, with
// this k). INVALID_ARGUMENT when an answer is malformed: counts not one per
// query, a count above its k or beyond its arrays; the message names the
// shard (its index in `answers`) and what is wrong.
absl::StatusOr<ShardAnswer> MergeShardAnswers(
    Metric metric, std::span<const ShardAnswer> answers, int64_t num_queries,
    int64_t k);

}  // namespace peakknn
