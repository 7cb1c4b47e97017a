// Finite but extreme values (issue 12 item 6): vectors and queries whose
// squared norms, scores or distances would overflow float are refused with
// a message naming the element and the bound; everything up to the bound
// searches correctly (finite distances, exact self-matches), in f32 and
// bf16, under every metric.
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "engine/collection.h"
#include "engine/vector_checks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/magnitude.h"

namespace peakknn {
namespace {

using ::testing::HasSubstr;

constexpr float kFloatMax = std::numeric_limits<float>::max();

std::unique_ptr<Collection> Make(int dim, Metric metric, DType dtype) {
  auto c = Collection::Create({"extreme", dim, metric, dtype, 0.95});
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(*c);
}

std::vector<uint64_t> Ids(int64_t n) {
  std::vector<uint64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  return ids;
}

void ExpectRefused(const absl::Status& s, const std::string& text) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(text));
}

// The chunked scan finds the first offending element wherever it is
// (inside a 64-float chunk or in the tail), for NaN, infinities and finite
// values just above the limit, of either sign.
TEST(ExtremeValues, FirstAboveFindsTheFirstOffenderAnywhere) {
  const float limit = 100.0f;
  const uint32_t limit_bits = kernels::MagnitudeBits(limit);
  const float bad[] = {NAN, INFINITY, -INFINITY, std::nextafter(limit, 1e9f),
                       -1000.0f};
  for (size_t n : {0, 1, 63, 64, 65, 200}) {
    std::vector<float> v(n, -limit);  // exactly at the limit: allowed
    EXPECT_EQ(kernels::FirstAbove(v.data(), n, limit_bits), n);
    for (size_t at = 0; at < n; at += 7) {
      for (float x : bad) {
        std::vector<float> w = v;
        w[at] = x;
        if (at + 3 < n) w[at + 3] = x;  // a later offender does not matter
        EXPECT_EQ(kernels::FirstAbove(w.data(), n, limit_bits), at)
            << "n " << n << " at " << at << " value " << x;
      }
    }
  }
}

TEST(ExtremeValues, MaxComponentKeepsTheSquaredNormWithinTheBound) {
  for (int dim : {1, 2, 7, 128, 4096}) {
    const double m = MaxComponent(dim);
    EXPECT_LE(m * m * dim, static_cast<double>(kFloatMax) / 8) << dim;
    EXPECT_GT(m * m * dim, static_cast<double>(kFloatMax) / 8.01) << dim;
  }
}

TEST(ExtremeValues, RowsWhoseSquaredNormOverflowsAreRefused) {
  for (DType dtype : {DType::kF32, DType::kBf16}) {
    auto c = Make(4, Metric::kL2, dtype);
    // |x|^2 = 4e40: overflows float; was accepted and then never found.
    const std::vector<float> huge = {1e20f, 1e20f, 1e20f, 1e20f};
    ExpectRefused(
        c->Write(WriteMode::kInsert, Ids(1), huge),
        "vectors[0] (vector 0, dimension 0) = 1e+20: magnitude above");
    EXPECT_EQ(c->Stats().rows, 0);
  }
}

TEST(ExtremeValues, QueriesAtFloatMaxAreRefused) {
  auto c = Make(4, Metric::kL2, DType::kF32);
  ASSERT_TRUE(c->Write(WriteMode::kInsert, Ids(2),
                       std::vector<float>{1, 2, 3, 4, -1, -2, -3, -4})
                  .ok());
  // Used to return unrelated rows at distance 0.
  const std::vector<float> q = {kFloatMax, 0, 0, 0};
  ExpectRefused(c->Search(q, {1, 1.0}).status(),
                "queries[0] (vector 0, dimension 0)");
  ExpectRefused(c->Search(q, {1, 1.0}).status(), "dim 4");
}

TEST(ExtremeValues, TinyCosineVectorsAreRefusedNotStoredAsInfinity) {
  auto c = Make(4, Metric::kCosine, DType::kF32);
  // Passed the zero check, then normalisation overflowed to [inf, nan, ...].
  const std::vector<float> tiny = {1e-45f, 0, 0, 0};
  ExpectRefused(c->Write(WriteMode::kInsert, Ids(1), tiny),
                "COSINE needs a norm of at least");
  ExpectRefused(c->Search(tiny, {1, 1.0}).status(), "queries: vector 0");
  // Small but normalisable vectors are fine and come back unit length.
  const std::vector<float> small = {3e-30f, 4e-30f, 0, 0};
  ASSERT_TRUE(c->Write(WriteMode::kInsert, Ids(1), small).ok());
  const std::vector<float> stored = *c->Get(Ids(1))[0];
  EXPECT_NEAR(stored[0], 0.6f, 1e-6);
  EXPECT_NEAR(stored[1], 0.8f, 1e-6);
}

// Rows and queries at +-MaxComponent(dim) in every component (|v|^2 = B):
// every distance is finite and each row finds itself first.
TEST(ExtremeValues, VectorsAtTheBoundSearchWithFiniteDistances) {
  constexpr int kDim = 8;
  const float m = MaxComponent(kDim);
  std::vector<float> rows;
  for (int r = 0; r < 4; ++r) {
    for (int d = 0; d < kDim; ++d)
      rows.push_back(((r >> (d % 2)) & 1) ? m : -m);
  }
  // Row 0 and 3 differ everywhere; rows also at half magnitude.
  for (int d = 0; d < kDim; ++d) rows.push_back(m / 2);
  const int64_t n = static_cast<int64_t>(rows.size()) / kDim;
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    for (DType dtype : {DType::kF32, DType::kBf16}) {
      SCOPED_TRACE(std::string(MetricName(metric)) + " " +
                   std::string(DTypeName(dtype)));
      auto c = Make(kDim, metric, dtype);
      ASSERT_TRUE(c->Write(WriteMode::kInsert, Ids(n), rows).ok());
      auto r = c->Search(rows, {n, 1.0});
      ASSERT_TRUE(r.ok()) << r.status();
      for (int64_t q = 0; q < n; ++q) {
        ASSERT_EQ(r->counts[q], n) << "query " << q << " lost rows";
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_TRUE(std::isfinite(r->distances[q * n + i]))
              << "query " << q << " result " << i;
        }
        if (metric == Metric::kL2) {
          EXPECT_EQ(r->ids[q * n], static_cast<uint64_t>(q));
          EXPECT_EQ(r->distances[q * n], 0.0f);
        }
      }
    }
  }
}

}  // namespace
}  // namespace peakknn
