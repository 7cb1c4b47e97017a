// bf16 collections rescore their final candidates in f32 (engine/rescore.h):
// exact search returns what an f32 collection returns, approximate search
// meets the recall calculator's promise, and the f32 rows stay available.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "engine/collection.h"
#include "engine/rescore.h"
#include "gtest/gtest.h"

namespace peakknn {
namespace {

// Clustered data (as peakknn-bench's synthetic set): centre + N(0, 0.25^2),
// so each query has many near-tied neighbours, where bf16 rounding reorders.
std::vector<float> Clustered(int64_t n, int dim, int clusters, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> centres(static_cast<size_t>(clusters) * dim);
  std::mt19937_64 centre_rng(7);  // the same centres for rows and queries
  for (float& x : centres) x = normal(centre_rng);
  std::uniform_int_distribution<int> pick(0, clusters - 1);
  std::vector<float> v(n * dim);
  for (int64_t i = 0; i < n; ++i) {
    const float* c = centres.data() + pick(rng) * dim;
    for (int d = 0; d < dim; ++d) v[i * dim + d] = c[d] + 0.25f * normal(rng);
  }
  return v;
}

std::unique_ptr<Collection> MakeFilled(DType dtype, int dim,
                                       const std::vector<float>& rows) {
  CollectionSchema schema{"rescore", dim, Metric::kL2, dtype, 0.95};
  CollectionOptions options;
  options.block_rows = 4096;
  auto c = Collection::Create(schema, options);
  EXPECT_TRUE(c.ok()) << c.status();
  std::vector<uint64_t> ids(rows.size() / dim);
  std::iota(ids.begin(), ids.end(), uint64_t{0});
  EXPECT_TRUE((*c)->Write(WriteMode::kInsert, ids, rows).ok());
  return std::move(*c);
}

// True top-k row indices per query by squared L2 distance in double.
std::vector<std::set<uint64_t>> TrueTopK(const std::vector<float>& rows,
                                         const std::vector<float>& queries,
                                         int dim, int64_t k) {
  const int64_t n = rows.size() / dim, nq = queries.size() / dim;
  std::vector<std::set<uint64_t>> out(nq);
  std::vector<std::pair<double, uint64_t>> scored(n);
  for (int64_t q = 0; q < nq; ++q) {
    for (int64_t i = 0; i < n; ++i) {
      double dist = 0;
      for (int d = 0; d < dim; ++d) {
        const double diff = static_cast<double>(queries[q * dim + d]) -
                            static_cast<double>(rows[i * dim + d]);
        dist += diff * diff;
      }
      scored[i] = {dist, static_cast<uint64_t>(i)};
    }
    std::partial_sort(scored.begin(), scored.begin() + k, scored.end());
    for (int64_t i = 0; i < k; ++i) out[q].insert(scored[i].second);
  }
  return out;
}

double MeasuredRecall(const SearchResults& r,
                      const std::vector<std::set<uint64_t>>& truth) {
  double sum = 0;
  for (int64_t q = 0; q < r.num_queries; ++q) {
    int hit = 0;
    for (int i = 0; i < r.counts[q]; ++i) {
      hit += truth[q].count(r.ids[q * r.k + i]);
    }
    sum += static_cast<double>(hit) / truth[q].size();
  }
  return sum / r.num_queries;
}

TEST(RescoreCandidates, TwiceKCappedByBinsButNeverBelowK) {
  EXPECT_EQ(RescoreCandidates(10, 96), 20);
  EXPECT_EQ(RescoreCandidates(10, 16), 16);
  EXPECT_EQ(RescoreCandidates(10, 5), 10);
  EXPECT_EQ(RescoreCandidates(1000, 10000), 2000);
}

TEST(Bf16Rescore, ExactSearchEqualsF32CollectionBitForBit) {
  const int dim = 128;
  const int64_t k = 10;
  const auto rows = Clustered(8000, dim, 50, 1);
  const auto queries = Clustered(100, dim, 50, 2);
  auto f32 = MakeFilled(DType::kF32, dim, rows);
  auto bf16 = MakeFilled(DType::kBf16, dim, rows);
  auto want = f32->Search(queries, {k, 1.0});
  auto got = bf16->Search(queries, {k, 1.0});
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->exact);
  // The bf16 scan's 2k candidates hold the true top-k; rescored in f32 they
  // rank, and measure, exactly as the f32 collection's.
  EXPECT_EQ(got->counts, want->counts);
  EXPECT_EQ(got->ids, want->ids);
  EXPECT_EQ(got->distances, want->distances);
}

TEST(Bf16Rescore, ApproximateRecallMeetsExpectedWithinBinomialTolerance) {
  const int dim = 128;
  const int64_t k = 10, nq = 400;
  const auto rows = Clustered(20000, dim, 100, 3);
  const auto queries = Clustered(nq, dim, 100, 4);
  auto bf16 = MakeFilled(DType::kBf16, dim, rows);
  auto r = bf16->Search(queries, {k, 0.9});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_FALSE(r->exact);
  const double expected = r->expected_recall;
  const double measured = MeasuredRecall(*r, TrueTopK(rows, queries, dim, k));
  // Each of the nq * k true neighbours survives with probability ~expected:
  // allow three binomial standard deviations.
  const double sigma = std::sqrt(expected * (1 - expected) / (nq * k));
  EXPECT_GE(measured, expected - 3 * sigma)
      << "bins " << r->bins << " expected " << expected;
}

TEST(Bf16Rescore, DistancesAreF32AndGetReturnsRowsAsWritten) {
  const int dim = 3;
  const std::vector<float> rows = {0.1f, 0.2f, 0.3f, 1.001f, 2.003f, 2.007f};
  auto c = MakeFilled(DType::kBf16, dim, rows);
  const std::vector<float> query = {1.0f, 2.0f, 2.0f};
  auto r = c->Search(query, {1, 1.0});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->counts[0], 1);
  EXPECT_EQ(r->ids[0], 1u);
  // |q - x|^2 from the f32 row (bf16 would round 2.007 to 2.0 and 1.001 to
  // 1.0, giving 0): 0.001^2 + 0.003^2 + 0.007^2, up to f32 rounding of the
  // half-norm form.
  EXPECT_NEAR(r->distances[0], 5.9e-5, 5e-6);
  const uint64_t id = 1;
  auto got = c->Get(std::span<const uint64_t>(&id, 1));
  ASSERT_TRUE(got[0].has_value());
  EXPECT_EQ(*got[0], std::vector<float>(rows.begin() + 3, rows.end()));
}

}  // namespace
}  // namespace peakknn
