// The router's search over shards (router/sharded_search.h), in process over
// engine Collections standing in for the shards: each shard's share of the
// bins keeps the promise of one node over the same rows, exact stays exact,
// and the merge orders and validates like one node.
#include "router/sharded_search.h"

#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "engine/collection.h"
#include "engine/recall_calculator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace peakknn {
namespace {

using ::testing::HasSubstr;

constexpr int kDim = 16;

std::vector<float> Gaussian(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(n) * kDim);
  for (float& x : v) x = normal(rng);
  return v;
}

std::unique_ptr<Collection> NewCollection(Metric metric) {
  CollectionOptions options;
  options.block_rows = 4096;
  auto c =
      Collection::Create({"shard", kDim, metric, DType::kF32, 0.95}, options);
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(*c);
}

// Rows 0..n-1 of `rows`, row i with id i, dealt to `shards` collections by
// id % shards (any placement gives the same promise: the plan depends only
// on the total row count).
std::vector<std::unique_ptr<Collection>> Deal(const std::vector<float>& rows,
                                              int shards, Metric metric) {
  std::vector<std::unique_ptr<Collection>> out;
  std::vector<std::vector<uint64_t>> ids(shards);
  std::vector<std::vector<float>> data(shards);
  const int64_t n = static_cast<int64_t>(rows.size()) / kDim;
  for (int64_t i = 0; i < n; ++i) {
    ids[i % shards].push_back(static_cast<uint64_t>(i));
    data[i % shards].insert(data[i % shards].end(), rows.begin() + i * kDim,
                            rows.begin() + (i + 1) * kDim);
  }
  for (int s = 0; s < shards; ++s) {
    out.push_back(NewCollection(metric));
    EXPECT_TRUE(out.back()->Write(WriteMode::kInsert, ids[s], data[s]).ok());
  }
  return out;
}

ShardAnswer AnswerOf(const SearchResults& r) {
  return {r.k, r.ids, r.distances, r.counts};
}

// Searches every shard with `params` and merges.
ShardAnswer SearchShards(const std::vector<std::unique_ptr<Collection>>& shards,
                         Metric metric, const std::vector<float>& queries,
                         const SearchParams& params) {
  std::vector<ShardAnswer> answers;
  for (const auto& shard : shards) {
    absl::StatusOr<SearchResults> r = shard->Search(queries, params);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) answers.push_back(AnswerOf(*r));
  }
  const int64_t nq = static_cast<int64_t>(queries.size()) / kDim;
  absl::StatusOr<ShardAnswer> merged =
      MergeShardAnswers(metric, answers, nq, params.k);
  EXPECT_TRUE(merged.ok()) << merged.status();
  return merged.ok() ? *std::move(merged) : ShardAnswer{};
}

// Mean fraction of each query's true top-k found.
double Recall(const ShardAnswer& got, const SearchResults& truth) {
  double sum = 0;
  for (int64_t q = 0; q < truth.num_queries; ++q) {
    const std::set<uint64_t> want(truth.ids.begin() + q * truth.k,
                                  truth.ids.begin() + (q + 1) * truth.k);
    int hit = 0;
    for (int i = 0; i < got.counts[q]; ++i) {
      hit += want.count(got.ids[q * got.k + i]);
    }
    sum += static_cast<double>(hit) / truth.k;
  }
  return sum / truth.num_queries;
}

TEST(ShardedSearchPlanTest, SharesTheClusterPlanAndReportsItsRecall) {
  for (int shards : {1, 2, 3, 7}) {
    SCOPED_TRACE(shards);
    absl::StatusOr<ShardedSearchPlan> plan =
        PlanShardedSearch(1'000'000, 10, 0.95, shards);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_FALSE(plan->exact);
    EXPECT_EQ(plan->bins_per_shard % 16, 0);
    absl::StatusOr<RecallPlan> one = PlanRecall(1'000'000, 10, 0.95);
    ASSERT_TRUE(one.ok());
    // The shares cover one node's plan; the recall is that of what is used.
    EXPECT_GE(plan->bins_per_shard * shards, one->bins);
    EXPECT_GE(plan->expected_recall, 0.95);
    EXPECT_EQ(plan->expected_recall,
              ExpectedRecall(1'000'000, 10, plan->bins_per_shard * shards));
  }
  absl::StatusOr<ShardedSearchPlan> exact = PlanShardedSearch(5000, 10, 1, 3);
  ASSERT_TRUE(exact.ok());
  EXPECT_TRUE(exact->exact);
  EXPECT_EQ(exact->expected_recall, 1.0);
  EXPECT_EQ(PlanShardedSearch(100, 10, 0.9, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanShardedSearch(100, 0, 0.9, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
}

struct ShardedRecallCase {
  int shards;
  int64_t k;
  double target;
};

class ShardedRecallTest : public ::testing::TestWithParam<ShardedRecallCase> {};

// Shards scanning their share of the bins, merged, meet the expected recall
// of the cluster plan: measured over 1000 queries within a binomial
// tolerance of it (not below: the promise; not far above: no wasted bins).
TEST_P(ShardedRecallTest, MergedShardsMeetTheClusterPlan) {
  const auto [shards, k, target] = GetParam();
  constexpr int64_t kRows = 30000;
  constexpr int64_t kQueries = 1000;
  const std::vector<float> rows = Gaussian(kRows, 21);
  const std::vector<float> queries = Gaussian(kQueries, 22);
  std::unique_ptr<Collection> whole = NewCollection(Metric::kL2);
  std::vector<uint64_t> ids(kRows);
  for (int64_t i = 0; i < kRows; ++i) ids[i] = static_cast<uint64_t>(i);
  ASSERT_TRUE(whole->Write(WriteMode::kInsert, ids, rows).ok());
  absl::StatusOr<SearchResults> truth = whole->Search(queries, {k, 1.0});
  ASSERT_TRUE(truth.ok());

  absl::StatusOr<ShardedSearchPlan> plan =
      PlanShardedSearch(kRows, k, target, shards);
  ASSERT_TRUE(plan.ok());
  ASSERT_FALSE(plan->exact);
  const auto parts = Deal(rows, shards, Metric::kL2);
  const ShardAnswer merged =
      SearchShards(parts, Metric::kL2, queries,
                   {.k = k, .recall_target = 0, .bins = plan->bins_per_shard});
  const double measured = Recall(merged, *truth);
  const double p = plan->expected_recall;
  const double sigma = std::sqrt(p * (1 - p) / kQueries);
  std::printf(
      "shards=%d k=%lld target=%.2f bins/shard=%lld expected=%.4f "
      "measured=%.4f\n",
      shards, static_cast<long long>(k), target,
      static_cast<long long>(plan->bins_per_shard), p, measured);
  EXPECT_GE(p, target);
  EXPECT_GE(measured, p - 4 * sigma);
  EXPECT_LE(measured, p + 4 * sigma);
}

INSTANTIATE_TEST_SUITE_P(Cases, ShardedRecallTest,
                         ::testing::Values(ShardedRecallCase{1, 10, 0.9},
                                           ShardedRecallCase{2, 10, 0.9},
                                           ShardedRecallCase{3, 10, 0.95},
                                           ShardedRecallCase{2, 50, 0.9},
                                           ShardedRecallCase{3, 50, 0.95},
                                           ShardedRecallCase{3, 100, 0.8}));

// Exact on every shard, merged, is exact over all rows, for every metric:
// the same ids and distances as one collection holding them all.
TEST(ShardedExactTest, MergedExactShardsEqualOneCollection) {
  const std::vector<float> rows = Gaussian(5000, 31);
  const std::vector<float> queries = Gaussian(50, 32);
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    SCOPED_TRACE(MetricName(metric));
    const auto whole = Deal(rows, 1, metric);
    absl::StatusOr<SearchResults> one = whole[0]->Search(queries, {20, 1.0});
    ASSERT_TRUE(one.ok());
    for (int shards : {2, 3}) {
      const ShardAnswer merged =
          SearchShards(Deal(rows, shards, metric), metric, queries,
                       {.k = 20, .recall_target = 1.0});
      EXPECT_EQ(merged.ids, one->ids) << shards << " shards";
      EXPECT_EQ(merged.distances, one->distances) << shards << " shards";
      EXPECT_EQ(merged.counts, one->counts);
    }
  }
}

TEST(MergeShardAnswersTest, OrdersByDistanceThenIdAndKeepsK) {
  // Two queries; shard 0 has 2 results per query, shard 1 has 2 and 1.
  const ShardAnswer a{2, {4, 2, 7, 9}, {1.0f, 3.0f, 0.5f, 2.0f}, {2, 2}};
  const ShardAnswer b{2, {1, 8, 3, 0}, {3.0f, 5.0f, 0.25f, 0}, {2, 1}};
  const std::vector<ShardAnswer> answers = {a, b};
  absl::StatusOr<ShardAnswer> l2 =
      MergeShardAnswers(Metric::kL2, answers, 2, 3);
  ASSERT_TRUE(l2.ok()) << l2.status();
  // Query 0: 4 (1.0), then the tie at 3.0 by lower id: 1 before 2.
  EXPECT_THAT(std::vector<uint64_t>(l2->ids.begin(), l2->ids.begin() + 3),
              ::testing::ElementsAre(4, 1, 2));
  EXPECT_THAT(std::vector<uint64_t>(l2->ids.begin() + 3, l2->ids.end()),
              ::testing::ElementsAre(3, 7, 9));
  EXPECT_THAT(l2->counts, ::testing::ElementsAre(3, 3));
  // A similarity sorts the other way.
  absl::StatusOr<ShardAnswer> ip =
      MergeShardAnswers(Metric::kInnerProduct, answers, 2, 2);
  ASSERT_TRUE(ip.ok());
  EXPECT_THAT(ip->ids, ::testing::ElementsAre(8, 1, 9, 7));
  // Fewer results than k in all: all of them.
  const ShardAnswer few{1, {5, 0}, {1.0f, 0}, {1, 0}};
  absl::StatusOr<ShardAnswer> short_merge =
      MergeShardAnswers(Metric::kL2, std::vector<ShardAnswer>{few}, 2, 4);
  ASSERT_TRUE(short_merge.ok());
  EXPECT_THAT(short_merge->counts, ::testing::ElementsAre(1, 0));
  EXPECT_EQ(short_merge->ids[0], 5u);
}

TEST(MergeShardAnswersTest, MalformedAnswersNameTheShardAndTheProblem) {
  const ShardAnswer good{1, {1, 2}, {0.5f, 0.5f}, {1, 1}};
  const ShardAnswer wrong_counts{1, {1}, {0.5f}, {1}};
  const ShardAnswer over_k{1, {1, 2}, {0.5f, 0.5f}, {2, 1}};
  const ShardAnswer short_arrays{2, {1, 2}, {0.5f, 0.5f}, {1, 1}};
  for (const auto& [answer, words] :
       std::vector<std::pair<ShardAnswer, std::string>>{
           {wrong_counts, "1 result counts for 2 queries"},
           {over_k, "query 0 has 2 results, k=1"},
           {short_arrays, "k=2 with 2 ids"}}) {
    absl::StatusOr<ShardAnswer> merged = MergeShardAnswers(
        Metric::kL2, std::vector<ShardAnswer>{good, answer}, 2, 1);
    EXPECT_EQ(merged.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(merged.status().message()),
                HasSubstr("shard answer 1: " + words));
  }
}

TEST(SearchBinsTest, AnExplicitBinCountIsScannedAndReported) {
  const std::vector<float> rows = Gaussian(10000, 41);
  const auto c = Deal(rows, 1, Metric::kL2);
  const std::vector<float> query = Gaussian(1, 42);
  absl::StatusOr<SearchResults> r =
      c[0]->Search(query, {.k = 10, .recall_target = 0, .bins = 100});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->exact);
  EXPECT_EQ(r->bins, 112);  // rounded up to a multiple of 16
  EXPECT_EQ(r->expected_recall, ExpectedRecall(10000, 10, 112));
  absl::StatusOr<SearchResults> all =
      c[0]->Search(query, {.k = 10, .recall_target = 0, .bins = 20000});
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->exact);
  EXPECT_EQ(c[0]->Search(query, {.k = 10, .recall_target = 0, .bins = -1})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace peakknn
