#include "engine/recall_calculator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/layout.h"

namespace peakknn {
namespace {

// log P(X = j) for X ~ Binomial(trials, p), 0 < p < 1, 0 <= j <= trials.
double LogBinomialPmf(int64_t trials, int64_t j, double log_p, double log_q) {
  const double t = static_cast<double>(trials);
  const double s = static_cast<double>(j);
  return std::lgamma(t + 1) - std::lgamma(s + 1) - std::lgamma(t - s + 1) +
         s * log_p + (t - s) * log_q;
}

// The values X ~ Binomial(trials, 1/bins) takes but with negligible
// probability lie outside [lo, hi]: with mean m = trials / bins and
// t = 12 sqrt(m) + 144, P(X <= m - t) <= exp(-t^2 / (2m)) (Chernoff) and
// P(X >= m + t) <= exp(-t^2 / (2 (m + t / 3))) (Bernstein) are both below
// e^-72 ~ 5e-32, far under a double's precision. The sums below visit only
// this window, so they cost O(sqrt(m) + 144) terms, whatever per_bin is.
struct MassWindow {
  int64_t lo;
  int64_t hi;
};
MassWindow WindowOf(int64_t trials, double bins) {
  constexpr double kWidth = 12;
  const double mean = static_cast<double>(trials) / bins;
  const double spread = kWidth * std::sqrt(mean) + kWidth * kWidth;
  const double last = static_cast<double>(trials);
  return {
      static_cast<int64_t>(std::clamp(std::floor(mean - spread), 0.0, last)),
      static_cast<int64_t>(std::clamp(std::ceil(mean + spread), 0.0, last))};
}

// The model's quantities depend only on how many of the true top-k exist:
// a collection of n rows has min(k, n) of them.
int64_t EffectiveK(int64_t n, int64_t k) { return std::min(k, n); }

// True when every one of the top-k certainly survives: no rows or nothing to
// find, one bin per row (strided bins then never collide), or bins keep at
// least as many rows as the query asks for.
bool CertainlyExact(int64_t n, int64_t k, int64_t bins, int per_bin) {
  return n <= 0 || k <= 0 || bins >= n || per_bin >= k;
}

}  // namespace

// Each bin receives X ~ Binomial(k, 1/L) of the true top-k and keeps the best
// min(X, per_bin) of them (the top-k elements in a bin are that bin's best),
// so by symmetry over the L bins
//
//   E[recall@k] = (L/k) * E[min(X, per_bin)]
//               = (L/k) * sum_{j=1..per_bin} P(X >= j),
//
// which for per_bin = 1 is the closed form (L/k) * (1 - (1 - 1/L)^k).
// P(X >= 1) = -expm1(k * log1p(-1/L)) keeps full relative precision for
// large L; each further term subtracts P(X = j) from the previous tail, an
// absolute error of about one ulp of P(X >= 1) ~ k/L, which the factor L/k
// turns into an absolute error of a few ulps in the recall. Only the terms
// in X's WindowOf are computed: below it P(X >= j) is 1 and above it 0, to
// within the window's negligible outside mass.
double ExpectedRecall(int64_t n, int64_t k, int64_t bins, int per_bin) {
  if (bins <= 0 || per_bin <= 0) return 0.0;  // nothing is kept
  const int64_t keff = EffectiveK(n, k);
  if (CertainlyExact(n, keff, bins, per_bin)) return 1.0;
  const double kd = static_cast<double>(keff);
  const double ld = static_cast<double>(bins);
  if (bins == 1) return static_cast<double>(per_bin) / kd;  // per_bin < k
  const double log_p = -std::log(ld);
  const double log_q = std::log1p(-1.0 / ld);
  const MassWindow window = WindowOf(keff, ld);
  // At the top of the loop: tail = P(X >= j), sum = sum_{i=1..j} P(X >= i).
  int64_t j = 1;
  double tail = -std::expm1(kd * log_q);  // P(X >= 1)
  double sum = tail;
  if (window.lo > 1) {
    j = std::min<int64_t>(window.lo, per_bin);
    tail = 1.0;
    sum = static_cast<double>(j);
  }
  const int64_t last = std::min<int64_t>({per_bin, keff, window.hi});
  for (; j < last; ++j) {
    tail -= std::exp(LogBinomialPmf(keff, j, log_p, log_q));
    if (tail <= 0) break;
    sum += tail;
  }
  return std::min(1.0, ld / kd * sum);
}

// The element of rank k survives iff fewer than per_bin of the k-1 better
// ones share its bin: P(Binomial(k-1, 1/L) < per_bin), a sum of positive
// terms (no cancellation) over the binomial's WindowOf.
double WorstRankRecall(int64_t n, int64_t k, int64_t bins, int per_bin) {
  if (bins <= 0 || per_bin <= 0) return 0.0;
  const int64_t keff = EffectiveK(n, k);
  if (CertainlyExact(n, keff, bins, per_bin)) return 1.0;
  if (bins == 1) return 0.0;  // k-1 >= per_bin better rows share the one bin
  const double ld = static_cast<double>(bins);
  const double log_p = -std::log(ld);
  const double log_q = std::log1p(-1.0 / ld);
  const int64_t better = keff - 1;
  const MassWindow window = WindowOf(better, ld);
  const int64_t last = std::min<int64_t>(per_bin - 1, window.hi);
  double sum = 0.0;
  for (int64_t j = window.lo; j <= last; ++j) {
    sum += std::exp(LogBinomialPmf(better, j, log_p, log_q));
  }
  return std::min(1.0, sum);
}

absl::StatusOr<RecallPlan> PlanRecall(int64_t n, int64_t k,
                                      double recall_target, int per_bin,
                                      int shards) {
  if (n < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("n (row count) must be >= 0, got ", n));
  }
  if (k < 1) {
    return absl::InvalidArgumentError(absl::StrCat("k must be >= 1, got ", k));
  }
  // Written so that NaN fails too.
  if (!(recall_target > 0.0 && recall_target <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("recall_target must be in (0, 1], got ", recall_target));
  }
  if (per_bin < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("per_bin must be >= 1, got ", per_bin));
  }
  if (shards < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("shards must be >= 1, got ", shards));
  }

  RecallPlan plan;
  plan.per_bin = per_bin;
  const auto make_exact = [&] {
    plan.exact = true;
    plan.bins = n;
    plan.bins_per_shard = (n + shards - 1) / shards;
    plan.expected_recall = 1.0;
    plan.worst_rank_recall = 1.0;
    return plan;
  };
  if (recall_target == 1.0) {
    plan.conservative_bins = n;  // the worst-rank form needs L -> infinity
    return make_exact();
  }

  // XLA's worst-rank sizing, capped at n (beyond n every row has its own
  // bin). Computed in double: for k near 2^63 and targets near 1 the
  // uncapped value does not fit an int64.
  const double conservative =
      std::ceil(static_cast<double>(k - 1) / -std::log(recall_target));
  plan.conservative_bins = static_cast<int64_t>(std::clamp(
      conservative, 1.0, static_cast<double>(std::max<int64_t>(n, 1))));

  // Smallest L in [1, n] with ExpectedRecall >= target; L = n always meets
  // it (ExpectedRecall is 1 there) and the recall increases with L.
  int64_t lo = 1;
  int64_t hi = std::max<int64_t>(n, 1);
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (ExpectedRecall(n, k, mid, per_bin) >= recall_target) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  const int64_t total = kernels::RoundUpBins(lo);
  plan.bins_per_shard = kernels::RoundUpBins((total + shards - 1) / shards);
  plan.bins = plan.bins_per_shard * shards;
  if (plan.bins >= n) return make_exact();
  plan.expected_recall = ExpectedRecall(n, k, plan.bins, per_bin);
  plan.worst_rank_recall = WorstRankRecall(n, k, plan.bins, per_bin);
  return plan;
}

absl::StatusOr<RecallPlan> PlanForBins(int64_t n, int64_t k, int64_t bins) {
  if (n < 0 || k < 1 || bins < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("a plan for bins needs n >= 0, k >= 1 and bins >= 1; got "
                     "n=",
                     n, ", k=", k, ", bins=", bins));
  }
  RecallPlan plan;
  plan.bins = kernels::RoundUpBins(std::min(bins, std::max<int64_t>(n, 1)));
  plan.bins_per_shard = plan.bins;
  plan.conservative_bins = plan.bins;
  if (plan.bins >= n) {
    plan.exact = true;
    plan.bins = n;
    plan.bins_per_shard = n;
    return plan;
  }
  plan.expected_recall = ExpectedRecall(n, k, plan.bins);
  plan.worst_rank_recall = WorstRankRecall(n, k, plan.bins);
  return plan;
}

}  // namespace peakknn
