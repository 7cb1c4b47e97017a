#include "engine/recall_calculator.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace peakknn {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int64_t kBigN = 1'000'000'000;

// Values computed independently with exact rational arithmetic (Python
// fractions): (L/k) * (1 - (1 - 1/L)^k) and (1 - 1/L)^(k-1) for L = 16,
// k = 10; and for per_bin = 2, (L/k) * (P(X >= 1) + P(X >= 2)) with
// X ~ Binomial(10, 1/16), and P(Binomial(9, 1/16) < 2).
TEST(ExpectedRecallTest, MatchesClosedFormValues) {
  EXPECT_NEAR(ExpectedRecall(kBigN, 10, 16), 0.7608632399220369, 1e-14);
  EXPECT_NEAR(WorstRankRecall(kBigN, 10, 16), 0.5594245067186421, 1e-14);
  EXPECT_NEAR(ExpectedRecall(kBigN, 10, 16, 2), 0.9623019731254316, 1e-14);
  EXPECT_NEAR(WorstRankRecall(kBigN, 10, 16, 2), 0.8950792107498273, 1e-14);
}

TEST(ExpectedRecallTest, DegenerateCases) {
  // The best row always survives.
  EXPECT_EQ(ExpectedRecall(kBigN, 1, 16), 1.0);
  EXPECT_EQ(WorstRankRecall(kBigN, 1, 16), 1.0);
  // One bin keeps only the best row(s).
  EXPECT_DOUBLE_EQ(ExpectedRecall(kBigN, 10, 1), 0.1);
  EXPECT_DOUBLE_EQ(ExpectedRecall(kBigN, 10, 1, 3), 0.3);
  EXPECT_EQ(WorstRankRecall(kBigN, 10, 1), 0.0);
  // A bin per row, or bins that keep k rows each: nothing is lost.
  EXPECT_EQ(ExpectedRecall(100, 10, 100), 1.0);
  EXPECT_EQ(ExpectedRecall(100, 10, 500), 1.0);
  EXPECT_EQ(ExpectedRecall(kBigN, 10, 16, 10), 1.0);
  // k > n: only n true neighbours exist, and n = 3 with 16 bins is exact.
  EXPECT_EQ(ExpectedRecall(3, 10, 16), 1.0);
  // No rows: vacuously exact.
  EXPECT_EQ(ExpectedRecall(0, 10, 16), 1.0);
}

TEST(ExpectedRecallTest, AccurateForLargeBinCounts) {
  // 1 - E = (k-1)/(2L) - (k-1)(k-2)/(6L^2) + ...; a naive pow() evaluation
  // loses every digit of the deficit at L = 1e12.
  const double bins = 1e12;
  const double deficit =
      1.0 - ExpectedRecall(int64_t{1} << 60, 10, static_cast<int64_t>(bins));
  EXPECT_NEAR(deficit, 9.0 / (2.0 * bins), 5e-16);
  const double worst_deficit =
      1.0 - WorstRankRecall(int64_t{1} << 60, 10, static_cast<int64_t>(bins));
  EXPECT_NEAR(worst_deficit, 9.0 / bins, 5e-16);
}

// Issue 12 item 4: the sums visit only where the binomial has mass, so a
// huge per_bin costs nothing. With k = 1e10 over 2 bins each bin receives
// about 5e9 +- 7e4 of the top k: every bin fills its 2^31 - 1 slots, so
// E = L * per_bin / k exactly, and no rank beyond the kept ones survives.
// Summing term by term up to per_bin took minutes.
TEST(ExpectedRecallTest, CostIsIndependentOfPerBin) {
  const int64_t k = 10'000'000'000;
  const int per_bin = std::numeric_limits<int>::max();
  const absl::Time start = absl::Now();
  EXPECT_DOUBLE_EQ(ExpectedRecall(int64_t{1} << 40, k, 2, per_bin),
                   2.0 * per_bin / static_cast<double>(k));
  EXPECT_EQ(WorstRankRecall(int64_t{1} << 40, k, 2, per_bin), 0.0);
  absl::StatusOr<RecallPlan> plan =
      PlanRecall(1'000'000'000'000, 1'000'000'000, 0.95, 12'000'000);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_GE(plan->expected_recall, 0.95);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

// The per_bin form against a direct sum of the survival probabilities,
// (1/k) sum_r P(Binomial(r-1, 1/L) < per_bin), in long double.
TEST(ExpectedRecallTest, PerBinMatchesDirectSumOverRanks) {
  for (int per_bin : {1, 2, 3, 5}) {
    for (int64_t k : {2, 10, 37, 100}) {
      for (int64_t bins : {16, 48, 200, 1000}) {
        const long double p = 1.0L / bins;
        long double total = 0;
        for (int64_t r = 1; r <= k; ++r) {
          // P(Binomial(r-1, p) = j) for j < per_bin, by the pmf recurrence.
          long double pmf = std::pow(1.0L - p, static_cast<long double>(r - 1));
          long double cdf = 0;
          for (int64_t j = 0; j < per_bin && j <= r - 1; ++j) {
            cdf += pmf;
            pmf *= static_cast<long double>(r - 1 - j) / (j + 1) * p / (1 - p);
          }
          total += cdf;
        }
        EXPECT_NEAR(ExpectedRecall(kBigN, k, bins, per_bin),
                    static_cast<double>(total / k), 1e-12)
            << "per_bin=" << per_bin << " k=" << k << " bins=" << bins;
      }
    }
  }
}

TEST(ExpectedRecallTest, Monotone) {
  for (int per_bin : {1, 2, 4}) {
    double previous = 0;
    for (int64_t bins = 1; bins <= 4096; ++bins) {
      const double e = ExpectedRecall(kBigN, 100, bins, per_bin);
      ASSERT_GE(e, previous) << "bins=" << bins << " per_bin=" << per_bin;
      ASSERT_GE(ExpectedRecall(kBigN, 100, bins, per_bin + 1), e);
      ASSERT_LE(ExpectedRecall(kBigN, 101, bins, per_bin), e);
      ASSERT_LE(WorstRankRecall(kBigN, 100, bins, per_bin), e);
      previous = e;
    }
  }
}

TEST(PlanRecallTest, SmallestMultipleOf16ThatMeetsTarget) {
  for (int per_bin : {1, 2, 3}) {
    for (int64_t k : {1, 10, 100, 1000}) {
      for (double target : {0.5, 0.8, 0.9, 0.95, 0.99, 0.999}) {
        SCOPED_TRACE(testing::Message() << "per_bin=" << per_bin << " k=" << k
                                        << " target=" << target);
        const absl::StatusOr<RecallPlan> plan =
            PlanRecall(kBigN, k, target, per_bin);
        ASSERT_TRUE(plan.ok()) << plan.status();
        EXPECT_FALSE(plan->exact);
        EXPECT_EQ(plan->bins % 16, 0);
        EXPECT_EQ(plan->bins_per_shard, plan->bins);
        EXPECT_EQ(plan->per_bin, per_bin);
        EXPECT_GE(plan->expected_recall, target);
        EXPECT_EQ(plan->expected_recall,
                  ExpectedRecall(kBigN, k, plan->bins, per_bin));
        EXPECT_EQ(plan->worst_rank_recall,
                  WorstRankRecall(kBigN, k, plan->bins, per_bin));
        if (plan->bins > 16) {
          EXPECT_LT(ExpectedRecall(kBigN, k, plan->bins - 16, per_bin), target);
        }
      }
    }
  }
}

TEST(PlanRecallTest, TypicalPlanAndConservativeForm) {
  const absl::StatusOr<RecallPlan> plan = PlanRecall(1'000'000, 10, 0.95);
  ASSERT_TRUE(plan.ok()) << plan.status();
  // 1 - E ~ (k-1)/(2L) => L ~ 90 before rounding.
  EXPECT_EQ(plan->bins, 96);
  // ceil(9 / -ln(0.95)) = ceil(175.46).
  EXPECT_EQ(plan->conservative_bins, 176);
  EXPECT_LT(plan->worst_rank_recall, plan->expected_recall);
  // The conservative form guarantees the worst rank, by construction.
  EXPECT_GE(WorstRankRecall(1'000'000, 10, plan->conservative_bins), 0.95);
  EXPECT_LT(WorstRankRecall(1'000'000, 10, plan->conservative_bins - 1), 0.95);
}

TEST(PlanRecallTest, ExactWhenTargetIsOneOrBinsReachN) {
  absl::StatusOr<RecallPlan> plan = PlanRecall(5000, 10, 1.0);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->exact);
  EXPECT_EQ(plan->bins, 5000);
  EXPECT_EQ(plan->expected_recall, 1.0);
  EXPECT_EQ(plan->worst_rank_recall, 1.0);

  // k = 10 at 0.999 needs ~4500 bins: more than 1000 rows.
  plan = PlanRecall(1000, 10, 0.999);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->exact);
  EXPECT_EQ(plan->bins, 1000);
  EXPECT_EQ(plan->expected_recall, 1.0);

  // Rounding up to 16 bins reaches n = 10.
  plan = PlanRecall(10, 3, 0.5);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->exact);
  EXPECT_EQ(plan->bins, 10);

  plan = PlanRecall(0, 10, 0.9);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->exact);
  EXPECT_EQ(plan->bins, 0);
}

TEST(PlanRecallTest, ShardsShareTheTotal) {
  const absl::StatusOr<RecallPlan> one = PlanRecall(kBigN, 100, 0.95);
  ASSERT_TRUE(one.ok()) << one.status();
  for (int shards : {1, 2, 3, 7, 64}) {
    SCOPED_TRACE(testing::Message() << "shards=" << shards);
    const absl::StatusOr<RecallPlan> plan =
        PlanRecall(kBigN, 100, 0.95, 1, shards);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->bins_per_shard % 16, 0);
    EXPECT_EQ(plan->bins, plan->bins_per_shard * shards);
    EXPECT_EQ(plan->bins_per_shard,
              (((one->bins + shards - 1) / shards) + 15) / 16 * 16);
    EXPECT_GE(plan->bins, one->bins);
    EXPECT_GE(plan->expected_recall, 0.95);
    EXPECT_EQ(plan->expected_recall, ExpectedRecall(kBigN, 100, plan->bins));
  }
  // Exact plans split the rows.
  const absl::StatusOr<RecallPlan> exact = PlanRecall(1000, 10, 1.0, 1, 3);
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_TRUE(exact->exact);
  EXPECT_EQ(exact->bins_per_shard, 334);
}

TEST(PlanRecallTest, RejectsBadArguments) {
  const auto error = [](int64_t n, int64_t k, double target, int per_bin,
                        int shards) {
    const absl::StatusOr<RecallPlan> plan =
        PlanRecall(n, k, target, per_bin, shards);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(plan.status().message());
  };
  EXPECT_THAT(error(-1, 10, 0.9, 1, 1), AllOf(HasSubstr("n"), HasSubstr("-1")));
  EXPECT_THAT(error(100, 0, 0.9, 1, 1), AllOf(HasSubstr("k"), HasSubstr("0")));
  EXPECT_THAT(error(100, 10, 0.0, 1, 1), HasSubstr("recall_target"));
  EXPECT_THAT(error(100, 10, -0.5, 1, 1),
              AllOf(HasSubstr("recall_target"), HasSubstr("-0.5")));
  EXPECT_THAT(error(100, 10, 1.5, 1, 1),
              AllOf(HasSubstr("recall_target"), HasSubstr("1.5")));
  EXPECT_THAT(error(100, 10, std::numeric_limits<double>::quiet_NaN(), 1, 1),
              AllOf(HasSubstr("recall_target"), HasSubstr("nan")));
  EXPECT_THAT(error(100, 10, 0.9, 0, 1),
              AllOf(HasSubstr("per_bin"), HasSubstr("0")));
  EXPECT_THAT(error(100, 10, 0.9, 1, -2),
              AllOf(HasSubstr("shards"), HasSubstr("-2")));
}

// Monte Carlo check of the model the calculator states: the true top-k
// ranks land in bins at random; rank r survives iff fewer than per_bin of the
// better ranks share its bin. Two assignment models:
//  - independent uniform bins (exactly the calculator's binomial model);
//  - k distinct slots of n = 1000 * L drawn at random, bin = slot mod L (the
//    engine's strided bins over randomly placed rows; binomial up to O(L/n)).
struct MonteCarloCase {
  int64_t bins;
  int64_t k;
  int per_bin;
  friend std::ostream& operator<<(std::ostream& os, const MonteCarloCase& c) {
    return os << "{L=" << c.bins << " k=" << c.k << " per_bin=" << c.per_bin
              << "}";
  }
};

class MonteCarloTest : public testing::TestWithParam<MonteCarloCase> {};

TEST_P(MonteCarloTest, AgreesWithSimulation) {
  const MonteCarloCase c = GetParam();
  constexpr int kTrials = 20000;
  const int64_t n = 1000 * c.bins;
  for (bool strided : {false, true}) {
    SCOPED_TRACE(strided ? "strided slots" : "independent bins");
    std::mt19937_64 rng(12345 + c.bins * 31 + c.k * 7 + c.per_bin);
    std::uniform_int_distribution<int64_t> bin_of(0, c.bins - 1);
    std::uniform_int_distribution<int64_t> slot_of(0, n - 1);
    std::vector<int> occupancy(c.bins);
    std::unordered_set<int64_t> slots;
    double sum = 0, sum_sq = 0;
    int64_t worst_survived = 0;
    std::vector<int64_t> bin_of_rank(c.k);
    for (int t = 0; t < kTrials; ++t) {
      slots.clear();
      for (int64_t r = 0; r < c.k; ++r) {
        if (!strided) {
          bin_of_rank[r] = bin_of(rng);
          continue;
        }
        int64_t slot;
        do slot = slot_of(rng);
        while (!slots.insert(slot).second);
        bin_of_rank[r] = slot % c.bins;
      }
      std::fill(occupancy.begin(), occupancy.end(), 0);
      int64_t survived = 0;
      for (int64_t r = 0; r < c.k; ++r) {
        const bool survives = occupancy[bin_of_rank[r]]++ < c.per_bin;
        survived += survives;
        if (r == c.k - 1) worst_survived += survives;
      }
      const double recall = static_cast<double>(survived) / c.k;
      sum += recall;
      sum_sq += recall * recall;
    }
    const double mean = sum / kTrials;
    const double variance = std::max(0.0, sum_sq / kTrials - mean * mean);
    const double expected = ExpectedRecall(n, c.k, c.bins, c.per_bin);
    EXPECT_NEAR(mean, expected, 4 * std::sqrt(variance / kTrials) + 1e-12);

    const double worst = WorstRankRecall(n, c.k, c.bins, c.per_bin);
    const double worst_mean = static_cast<double>(worst_survived) / kTrials;
    EXPECT_NEAR(worst_mean, worst,
                4 * std::sqrt(worst * (1 - worst) / kTrials) + 1e-12);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MonteCarloTest,
    testing::Values(MonteCarloCase{16, 10, 1}, MonteCarloCase{96, 10, 1},
                    MonteCarloCase{64, 100, 1}, MonteCarloCase{32, 10, 2},
                    MonteCarloCase{16, 50, 4}, MonteCarloCase{256, 100, 2}),
    [](const testing::TestParamInfo<MonteCarloCase>& param_info) {
      const MonteCarloCase& c = param_info.param;
      return "L" + std::to_string(c.bins) + "_k" + std::to_string(c.k) + "_p" +
             std::to_string(c.per_bin);
    });

}  // namespace
}  // namespace peakknn
