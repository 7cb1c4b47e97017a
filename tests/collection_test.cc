// The in-memory collection: exact search equals brute force, approximate
// search meets its recall guarantee, edge cases and bad input.
#include "engine/collection.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace peakknn {
namespace {

using ::testing::HasSubstr;

std::vector<float> Gaussian(int64_t n, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n * dim);
  for (float& x : v) x = normal(rng);
  return v;
}

std::vector<uint64_t> Iota(int64_t n, uint64_t first = 0) {
  std::vector<uint64_t> ids(n);
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

std::unique_ptr<Collection> Make(int dim, Metric metric = Metric::kL2,
                                 DType dtype = DType::kF32,
                                 int64_t block_rows = 1024) {
  CollectionSchema schema{"test", dim, metric, dtype, 0.95};
  CollectionOptions options;
  options.block_rows = block_rows;
  auto c = Collection::Create(schema, options);
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(*c);
}

// Brute-force top-k ids (double precision) for each query.
std::vector<std::vector<uint64_t>> BruteForce(const std::vector<float>& rows,
                                              const std::vector<uint64_t>& ids,
                                              const std::vector<float>& queries,
                                              int dim, int64_t k,
                                              Metric metric) {
  const int64_t n = ids.size(), nq = queries.size() / dim;
  std::vector<std::vector<uint64_t>> out(nq);
  std::vector<std::pair<double, uint64_t>> scored(n);
  for (int64_t q = 0; q < nq; ++q) {
    for (int64_t i = 0; i < n; ++i) {
      double dot = 0, dist = 0, qn = 0, xn = 0;
      for (int d = 0; d < dim; ++d) {
        const double a = queries[q * dim + d], b = rows[i * dim + d];
        dot += a * b;
        dist += (a - b) * (a - b);
        qn += a * a;
        xn += b * b;
      }
      double key = metric == Metric::kL2 ? dist
                   : metric == Metric::kInnerProduct
                       ? -dot
                       : -dot / std::sqrt(qn * xn);
      scored[i] = {key, ids[i]};
    }
    const int64_t kk = std::min<int64_t>(k, n);
    std::partial_sort(scored.begin(), scored.begin() + kk, scored.end());
    for (int64_t i = 0; i < kk; ++i) out[q].push_back(scored[i].second);
  }
  return out;
}

double Recall(const SearchResults& r,
              const std::vector<std::vector<uint64_t>>& truth) {
  double sum = 0;
  for (int64_t q = 0; q < r.num_queries; ++q) {
    std::set<uint64_t> want(truth[q].begin(), truth[q].end());
    int hit = 0;
    for (int i = 0; i < r.counts[q]; ++i) hit += want.count(r.ids[q * r.k + i]);
    sum += static_cast<double>(hit) / truth[q].size();
  }
  return sum / r.num_queries;
}

struct MetricCase {
  Metric metric;
  DType dtype;
};

class ExactSearchTest : public ::testing::TestWithParam<MetricCase> {};

TEST_P(ExactSearchTest, EqualsBruteForce) {
  const auto [metric, dtype] = GetParam();
  const int dim = 37;
  const int64_t n = 3000, nq = 40, k = 10;
  auto c = Make(dim, metric, dtype);
  const auto rows = Gaussian(n, dim, 1);
  const auto ids = Iota(n, 1000);
  ASSERT_TRUE(c->Write(WriteMode::kInsert, ids, rows).ok());
  const auto queries = Gaussian(nq, dim, 2);
  auto r = c->Search(queries, {k, 1.0});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->exact);
  EXPECT_EQ(r->expected_recall, 1.0);
  // bf16 rounding can swap near-ties; f32 must match exactly.
  std::vector<float> reference_rows = rows;
  if (dtype == DType::kBf16) {
    for (int64_t i = 0; i < n; ++i) {
      auto got = c->Get(std::span<const uint64_t>(&ids[i], 1));
      std::copy(got[0]->begin(), got[0]->end(),
                reference_rows.begin() + i * dim);
    }
  }
  const auto truth = BruteForce(reference_rows, ids, queries, dim, k, metric);
  const double recall = Recall(*r, truth);
  if (dtype == DType::kF32) {
    EXPECT_EQ(recall, 1.0);
  } else {
    EXPECT_GE(recall, 0.97);  // bf16 queries are rounded too
  }
  // Results are ordered best first.
  for (int64_t q = 0; q < nq; ++q) {
    for (int i = 1; i < r->counts[q]; ++i) {
      const float a = r->distances[q * k + i - 1], b = r->distances[q * k + i];
      if (metric == Metric::kL2) {
        EXPECT_LE(a, b);
      } else {
        EXPECT_GE(a, b);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Metrics, ExactSearchTest,
    ::testing::Values(MetricCase{Metric::kL2, DType::kF32},
                      MetricCase{Metric::kInnerProduct, DType::kF32},
                      MetricCase{Metric::kCosine, DType::kF32},
                      MetricCase{Metric::kL2, DType::kBf16},
                      MetricCase{Metric::kCosine, DType::kBf16}));

TEST(Collection, L2DistancesAreSquaredEuclidean) {
  auto c = Make(3);
  const std::vector<float> rows = {0, 0, 0, 1, 2, 2};
  ASSERT_TRUE(c->Write(WriteMode::kInsert, Iota(2), rows).ok());
  const std::vector<float> query = {1, 0, 0};
  auto r = c->Search(query, {2, 1.0});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ids[0], 0u);
  EXPECT_NEAR(r->distances[0], 1.0, 1e-5);
  EXPECT_EQ(r->ids[1], 1u);
  EXPECT_NEAR(r->distances[1], 8.0, 1e-5);
}

struct RecallCase {
  int64_t n;
  int64_t k;
  double target;
};

class RecallGuaranteeTest : public ::testing::TestWithParam<RecallCase> {};

// Measured recall over 1000 queries must sit within a binomial tolerance of
// the calculator's expected recall: not below (the guarantee) and not far
// above (the calculator would then be wasting bins).
TEST_P(RecallGuaranteeTest, MeasuredMatchesExpected) {
  const auto [n, k, target] = GetParam();
  const int dim = 16;
  const int64_t nq = 1000;
  auto c = Make(dim, Metric::kL2, DType::kF32, 4096);
  const auto rows = Gaussian(n, dim, 11);
  const auto ids = Iota(n);
  ASSERT_TRUE(c->Write(WriteMode::kInsert, ids, rows).ok());
  const auto queries = Gaussian(nq, dim, 12);
  auto approx = c->Search(queries, {k, target});
  ASSERT_TRUE(approx.ok());
  ASSERT_FALSE(approx->exact);
  auto exact = c->Search(queries, {k, 1.0});
  ASSERT_TRUE(exact.ok());
  std::vector<std::vector<uint64_t>> truth(nq);
  for (int64_t q = 0; q < nq; ++q) {
    truth[q].assign(exact->ids.begin() + q * k,
                    exact->ids.begin() + (q + 1) * k);
  }
  const double measured = Recall(*approx, truth);
  const double p = approx->expected_recall;
  EXPECT_GE(p, target);
  const double sigma = std::sqrt(p * (1 - p) / nq);
  std::printf(
      "n=%lld k=%lld target=%.3f bins=%lld expected=%.4f measured=%.4f\n",
      static_cast<long long>(n), static_cast<long long>(k), target,
      static_cast<long long>(approx->bins), p, measured);
  EXPECT_GE(measured, p - 4 * sigma);
  EXPECT_LE(measured, p + 4 * sigma);
}

INSTANTIATE_TEST_SUITE_P(Cases, RecallGuaranteeTest,
                         ::testing::Values(RecallCase{20000, 10, 0.9},
                                           RecallCase{20000, 10, 0.95},
                                           RecallCase{50000, 50, 0.9},
                                           RecallCase{50000, 100, 0.85}));

TEST(Collection, ResultsDoNotDependOnThreadCount) {
  const int dim = 24;
  const auto rows = Gaussian(20000, dim, 5);
  const auto queries = Gaussian(7, dim, 6);
  std::vector<std::vector<uint64_t>> results;
  for (int threads : {1, 3}) {
    ThreadPool pool(threads);
    CollectionOptions options;
    options.block_rows = 4096;
    options.pool = &pool;
    auto c =
        Collection::Create({"t", dim, Metric::kL2, DType::kF32, 0.9}, options);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Write(WriteMode::kInsert, Iota(20000), rows).ok());
    for (double target : {0.9, 1.0}) {
      auto r = (*c)->Search(queries, {10, target});
      ASSERT_TRUE(r.ok());
      results.push_back(r->ids);
    }
  }
  EXPECT_EQ(results[0], results[2]);
  EXPECT_EQ(results[1], results[3]);
}

TEST(Collection, EdgeCases) {
  // Empty collection: no results, no error.
  auto empty = Make(8);
  auto r = empty->Search(Gaussian(2, 8, 1), {5, 0});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->counts, (std::vector<int32_t>{0, 0}));

  // k > N and k == N return every row; N < L is exact.
  auto small = Make(8);
  ASSERT_TRUE(
      small->Write(WriteMode::kInsert, Iota(5), Gaussian(5, 8, 2)).ok());
  for (int64_t k : {5, 9}) {
    auto s = small->Search(Gaussian(1, 8, 3), {k, 0.9});
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(s->exact);
    EXPECT_EQ(s->counts[0], 5);
    std::set<uint64_t> got(s->ids.begin(), s->ids.begin() + 5);
    EXPECT_EQ(got.size(), 5u);
  }

  // dim 1 and dim 4096.
  for (int dim : {1, 4096}) {
    auto c = Make(dim);
    const auto rows = Gaussian(100, dim, 4);
    ASSERT_TRUE(c->Write(WriteMode::kInsert, Iota(100), rows).ok());
    auto s = c->Search(std::span<const float>(rows.data() + 42 * dim, dim),
                       {1, 1.0});
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->ids[0], 42u) << "dim " << dim;
  }

  // Duplicate vectors: both are found, lower slot first.
  auto dup = Make(4);
  const std::vector<float> same = {1, 2, 3, 4, 1, 2, 3, 4, 9, 9, 9, 9};
  ASSERT_TRUE(
      dup->Write(WriteMode::kInsert, std::vector<uint64_t>{7, 3, 5}, same)
          .ok());
  auto s = dup->Search(std::span<const float>(same.data(), 4), {2, 1.0});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->ids[0], 7u);
  EXPECT_EQ(s->ids[1], 3u);
}

TEST(Collection, DeletesAndUpsertsAreMaskedInSearch) {
  const int dim = 8;
  auto c = Make(dim, Metric::kL2, DType::kF32, 64);
  const auto rows = Gaussian(500, dim, 9);
  ASSERT_TRUE(c->Write(WriteMode::kInsert, Iota(500), rows).ok());
  const std::span<const float> target(rows.data() + 123 * dim, dim);
  EXPECT_EQ(c->Search(target, {1, 1.0})->ids[0], 123u);
  const std::vector<uint64_t> gone = {123, 99999};
  EXPECT_EQ(c->Delete(gone), 1);
  for (double t : {0.9, 1.0}) {
    auto r = c->Search(target, {500, t});
    ASSERT_TRUE(r.ok());
    for (int i = 0; i < r->counts[0]; ++i) EXPECT_NE(r->ids[i], 123u);
  }
  EXPECT_EQ(c->Stats().live_rows, 499);
  EXPECT_FALSE(c->Get(gone)[0].has_value());

  // Upsert id 7 to the vector of deleted row 123: 7 is now its neighbour.
  const std::vector<uint64_t> seven = {7};
  ASSERT_TRUE(c->Write(WriteMode::kUpsert, seven, target).ok());
  EXPECT_EQ(c->Search(target, {1, 1.0})->ids[0], 7u);
  EXPECT_EQ(c->Stats().live_rows, 499);
  EXPECT_EQ(c->Stats().rows, 501);
  EXPECT_EQ(*c->Get(seven)[0],
            std::vector<float>(target.begin(), target.end()));
}

TEST(Collection, BadInputIsRejectedAndNothingChanges) {
  auto c = Make(4, Metric::kCosine);
  ASSERT_TRUE(c->Write(WriteMode::kInsert, Iota(2), Gaussian(2, 4, 1)).ok());
  auto expect_error = [&](absl::Status s, absl::StatusCode code,
                          const std::string& text) {
    EXPECT_EQ(s.code(), code) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(text));
  };
  std::vector<float> bad = {1, 2, 3, 4, 1, NAN, 0, 0};
  expect_error(c->Write(WriteMode::kInsert, Iota(2, 10), bad),
               absl::StatusCode::kInvalidArgument, "non-finite");
  bad[5] = INFINITY;
  expect_error(c->Write(WriteMode::kInsert, Iota(2, 10), bad),
               absl::StatusCode::kInvalidArgument, "dimension 1");
  expect_error(c->Write(WriteMode::kInsert, Iota(2, 10), Gaussian(1, 4, 1)),
               absl::StatusCode::kInvalidArgument, "expected 2 x dim 4");
  expect_error(c->Write(WriteMode::kInsert, std::vector<uint64_t>{1, 2},
                        Gaussian(2, 4, 1)),
               absl::StatusCode::kAlreadyExists, "id 1 already exists");
  expect_error(c->Write(WriteMode::kInsert, std::vector<uint64_t>{8, 8},
                        Gaussian(2, 4, 1)),
               absl::StatusCode::kInvalidArgument, "more than once");
  expect_error(c->Write(WriteMode::kInsert, std::vector<uint64_t>{9},
                        std::vector<float>(4, 0.f)),
               absl::StatusCode::kInvalidArgument, "COSINE");
  EXPECT_EQ(c->Stats().rows, 2) << "a rejected batch must change nothing";

  const auto q = Gaussian(1, 4, 2);
  expect_error(c->Search(q, {0, 0}).status(),
               absl::StatusCode::kInvalidArgument, "k must be");
  expect_error(c->Search(q, {kMaxK + 1, 0}).status(),
               absl::StatusCode::kInvalidArgument, "k must be");
  expect_error(c->Search(q, {1, 1.5}).status(),
               absl::StatusCode::kInvalidArgument, "recall_target");
  expect_error(c->Search(q, {1, -0.1}).status(),
               absl::StatusCode::kInvalidArgument, "recall_target");
  expect_error(c->Search(Gaussian(1, 3, 1), {1, 0}).status(),
               absl::StatusCode::kInvalidArgument, "multiple of dim 4");
  expect_error(c->Search(std::vector<float>(4, 0.f), {1, 0}).status(),
               absl::StatusCode::kInvalidArgument, "COSINE");
  expect_error(c->Search(std::vector<float>{1, 1, NAN, 1}, {1, 0}).status(),
               absl::StatusCode::kInvalidArgument, "non-finite");
}

TEST(Collection, SearchesRunWhileWriting) {
  const int dim = 16;
  auto c = Make(dim, Metric::kL2, DType::kF32, 256);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int b = 0; b < 40; ++b) {
      ASSERT_TRUE(c->Write(WriteMode::kInsert, Iota(100, b * 100),
                           Gaussian(100, dim, b))
                      .ok());
      if (b % 3 == 0) c->Delete(Iota(10, b * 100));
    }
    done = true;
  });
  int searches = 0;
  while (!done || searches < 5) {
    auto r =
        c->Search(Gaussian(3, dim, searches), {10, searches % 2 ? 1.0 : 0.9});
    ASSERT_TRUE(r.ok());
    ++searches;
  }
  writer.join();
  EXPECT_EQ(c->Stats().live_rows, 4000 - 14 * 10);
}

// FirstPresent and Stats read the id map under its own lock while writes
// pack rows and allocate blocks: every id of a completed write is found,
// ids not yet written are not, and the counts only grow.
TEST(Collection, IdLookupsRunWhileWriting) {
  const int dim = 64;
  auto c = Make(dim, Metric::kL2, DType::kF32, 4096);
  std::atomic<int64_t> written{0};
  std::atomic<bool> finished{false};
  std::thread writer([&] {
    for (int b = 0; b < 60; ++b) {
      const absl::Status s = c->Write(WriteMode::kInsert, Iota(500, b * 500),
                                      Gaussian(500, dim, b));
      EXPECT_TRUE(s.ok()) << s;
      if (!s.ok()) break;
      written = (b + 1) * 500;
    }
    finished = true;
  });
  int64_t last_live = 0;
  while (!finished) {
    const int64_t known = written;
    if (known > 0) {
      const std::vector<uint64_t> last = {static_cast<uint64_t>(known - 1)};
      ASSERT_EQ(c->FirstPresent(last), std::optional<uint64_t>(known - 1));
    }
    const std::vector<uint64_t> future = {30000, 12345678};
    ASSERT_FALSE(c->FirstPresent(future).has_value());
    const int64_t live = c->Stats().live_rows;
    ASSERT_GE(live, last_live);
    last_live = live;
  }
  writer.join();
  EXPECT_EQ(c->Stats().live_rows, 30000);
}

}  // namespace
}  // namespace peakknn
