#include "router/sharded_search.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/recall_calculator.h"

namespace peakknn {

absl::StatusOr<ShardedSearchPlan> PlanShardedSearch(int64_t total_live_rows,
                                                    int64_t k,
                                                    double recall_target,
                                                    int shards) {
  absl::StatusOr<RecallPlan> plan =
      PlanRecall(total_live_rows, k, recall_target, /*per_bin=*/1, shards);
  if (!plan.ok()) return plan.status();
  ShardedSearchPlan out;
  if (plan->exact) {
    out.exact = true;
    return out;
  }
  out.bins_per_shard = plan->bins_per_shard;
  out.expected_recall = plan->expected_recall;  // for bins_per_shard * shards
  out.worst_rank_recall = plan->worst_rank_recall;
  return out;
}

namespace {

absl::Status CheckAnswer(const ShardAnswer& a, size_t shard,
                         int64_t num_queries) {
  const auto bad = [shard](auto... what) {
    return absl::InvalidArgumentError(
        absl::StrCat("shard answer ", shard, ": ", what...));
  };
  if (static_cast<int64_t>(a.counts.size()) != num_queries) {
    return bad(a.counts.size(), " result counts for ", num_queries, " queries");
  }
  if (a.k < 0 || a.ids.size() != a.distances.size() ||
      static_cast<int64_t>(a.ids.size()) < num_queries * a.k) {
    return bad("k=", a.k, " with ", a.ids.size(), " ids and ",
               a.distances.size(), " distances for ", num_queries, " queries");
  }
  for (int64_t q = 0; q < num_queries; ++q) {
    if (a.counts[q] < 0 || a.counts[q] > a.k) {
      return bad("query ", q, " has ", a.counts[q], " results, k=", a.k);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ShardAnswer> MergeShardAnswers(
    Metric metric, std::span<const ShardAnswer> answers, int64_t num_queries,
    int64_t k) {
  for (size_t s = 0; s < answers.size(); ++s) {
    if (absl::Status st = CheckAnswer(answers[s], s, num_queries); !st.ok()) {
      return st;
    }
  }
  // Nearer first: L2 distances ascend; inner product and cosine report a
  // similarity, which descends. Ties by lower id, as one node orders them.
  const bool larger_is_better = metric != Metric::kL2;
  using Hit = std::pair<float, uint64_t>;  // distance, id
  const auto nearer = [larger_is_better](const Hit& a, const Hit& b) {
    if (a.first != b.first) {
      return larger_is_better ? a.first > b.first : a.first < b.first;
    }
    return a.second < b.second;
  };
  ShardAnswer out;
  out.k = k;
  out.ids.assign(num_queries * k, 0);
  out.distances.assign(num_queries * k, 0);
  out.counts.assign(num_queries, 0);
  std::vector<Hit> hits;
  for (int64_t q = 0; q < num_queries; ++q) {
    hits.clear();
    for (const ShardAnswer& a : answers) {
      for (int32_t i = 0; i < a.counts[q]; ++i) {
        hits.emplace_back(a.distances[q * a.k + i], a.ids[q * a.k + i]);
      }
    }
    const size_t kept = std::min(hits.size(), static_cast<size_t>(k));
    std::partial_sort(hits.begin(), hits.begin() + kept, hits.end(), nearer);
    for (size_t i = 0; i < kept; ++i) {
      out.distances[q * k + i] = hits[i].first;
      out.ids[q * k + i] = hits[i].second;
    }
    out.counts[q] = static_cast<int32_t>(kept);
  }
  return out;
}

}  // namespace peakknn
