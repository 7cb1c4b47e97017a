// Every SIMD kernel set must return bit-identical scores and the same slots
// as the scalar reference, for both row types, over awkward shapes.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/bf16.h"
#include "kernels/candidate.h"
#include "kernels/layout.h"
#include "kernels/scan.h"
#include "kernels/score.h"

namespace peakknn::kernels {
namespace {

// Rows of one block in panel layout, built with the layout functions.
struct TestBlock {
  RowType type;
  int dim;
  int64_t rows;
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  std::vector<float> bias;
  std::vector<uint64_t> dead;

  RowRange Range(int64_t begin, int64_t end, int64_t slot_base) const {
    RowRange r;
    r.panels = type == RowType::kF32 ? static_cast<const void*>(f32.data())
                                     : static_cast<const void*>(bf16.data());
    r.type = type;
    r.dim = dim;
    r.bias = bias.data();
    r.dead = dead.data();
    r.begin = begin;
    r.end = end;
    r.slot_base = slot_base;
    return r;
  }
};

TestBlock MakeBlock(RowType type, int dim, int64_t rows, double dead_fraction,
                    std::mt19937_64& rng) {
  TestBlock b{type, dim, rows, {}, {}, {}, {}};
  const int64_t capacity = (rows + kPanelRows - 1) / kPanelRows * kPanelRows;
  std::normal_distribution<float> normal;
  std::bernoulli_distribution is_dead(dead_fraction);
  const int padded = PaddedDimBf16(dim);
  if (type == RowType::kF32) {
    b.f32.assign(capacity * dim, 0.f);
  } else {
    b.bf16.assign(capacity * padded, 0);
  }
  b.bias.assign(capacity, 0.f);
  b.dead.assign((capacity + 63) / 64, 0);
  for (int64_t r = 0; r < rows; ++r) {
    float norm = 0;
    for (int d = 0; d < dim; ++d) {
      const float v = normal(rng);
      if (type == RowType::kF32) {
        b.f32[F32PanelOffset(r, d, dim)] = v;
        norm += v * v;
      } else {
        const uint16_t h = FloatToBf16(v);
        b.bf16[Bf16PanelOffset(r, d, padded)] = h;
        norm += Bf16ToFloat(h) * Bf16ToFloat(h);
      }
    }
    b.bias[r] = RowBias(ScoreKind::kL2, norm);
    if (is_dead(rng)) b.dead[r >> 6] |= uint64_t{1} << (r & 63);
  }
  return b;
}

struct TestQueries {
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  QueryTile tile;
};

TestQueries MakeQueries(RowType type, int dim, int64_t count,
                        std::mt19937_64& rng) {
  TestQueries q;
  std::normal_distribution<float> normal;
  const int stride = type == RowType::kF32 ? dim : PaddedDimBf16(dim);
  q.f32.resize(count * dim);
  for (float& v : q.f32) v = normal(rng);
  q.tile.count = count;
  q.tile.stride = stride;
  if (type == RowType::kF32) {
    q.tile.f32 = q.f32.data();
  } else {
    q.bf16.assign(count * stride, 0);
    for (int64_t i = 0; i < count; ++i) {
      for (int d = 0; d < dim; ++d) {
        q.bf16[i * stride + d] = FloatToBf16(q.f32[i * dim + d]);
      }
    }
    q.tile.bf16 = q.bf16.data();
  }
  return q;
}

const KernelSet& Scalar() { return *SupportedKernelSets().front(); }

struct Shape {
  RowType type;
  int dim;
  int64_t rows;
  int64_t begin;  // multiple of 16
  int64_t end;
  int64_t queries;
  int64_t bins;
};

class KernelSetTest : public ::testing::TestWithParam<Shape> {};

TEST_P(KernelSetTest, PartialReduceMatchesScalarBitForBit) {
  const Shape s = GetParam();
  std::mt19937_64 rng(s.dim * 1000 + s.rows);
  const TestBlock block = MakeBlock(s.type, s.dim, s.rows, 0.1, rng);
  const TestQueries q = MakeQueries(s.type, s.dim, s.queries, rng);
  const RowRange range = block.Range(s.begin, s.end, /*slot_base=*/4096);

  auto run = [&](const KernelSet& set) {
    std::vector<float> scores(s.queries * s.bins);
    std::vector<int64_t> slots(s.queries * s.bins);
    BinTable table{scores.data(), slots.data(), s.bins};
    ResetBins(table, s.queries);
    set.partial_reduce(q.tile, range, table);
    return std::make_pair(scores, slots);
  };
  const auto reference = run(Scalar());
  int filled = 0;
  for (int64_t slot : reference.second) filled += slot != kNoSlot;
  ASSERT_GT(filled, 0) << "the reference found nothing; the test is vacuous";
  for (const KernelSet* set : SupportedKernelSets()) {
    SCOPED_TRACE(std::string(set->name));
    const auto got = run(*set);
    ASSERT_EQ(got.second, reference.second);
    for (size_t i = 0; i < got.first.size(); ++i) {
      ASSERT_EQ(got.first[i], reference.first[i]) << "bin entry " << i;
    }
  }
}

TEST_P(KernelSetTest, ExactScanMatchesScalar) {
  const Shape s = GetParam();
  std::mt19937_64 rng(s.dim * 7 + s.rows);
  const TestBlock block = MakeBlock(s.type, s.dim, s.rows, 0.1, rng);
  const TestQueries q = MakeQueries(s.type, s.dim, s.queries, rng);
  const RowRange range = block.Range(s.begin, s.end, /*slot_base=*/0);
  const int32_t k = 5;

  auto run = [&](const KernelSet& set) {
    std::vector<Candidate> storage(s.queries * 2 * k);
    std::vector<TopKBuffer> buffers(s.queries);
    for (int64_t i = 0; i < s.queries; ++i) {
      buffers[i] = TopKBuffer{storage.data() + i * 2 * k, 2 * k, k, 0, 0};
      buffers[i].Reset();
    }
    set.exact_scan(q.tile, range, buffers.data());
    std::vector<std::pair<float, int64_t>> out;
    for (TopKBuffer& b : buffers) {
      b.Finish();
      for (int i = 0; i < b.size; ++i) {
        out.emplace_back(b.items[i].score, b.items[i].slot);
      }
      out.emplace_back(0.f, -2);  // separator
    }
    return out;
  };
  const auto reference = run(Scalar());
  for (const KernelSet* set : SupportedKernelSets()) {
    SCOPED_TRACE(std::string(set->name));
    EXPECT_EQ(run(*set), reference);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, KernelSetTest,
    ::testing::Values(Shape{RowType::kF32, 1, 100, 0, 100, 3, 16},
                      Shape{RowType::kF32, 17, 1000, 0, 1000, 13, 64},
                      Shape{RowType::kF32, 128, 777, 32, 701, 50, 32},
                      Shape{RowType::kF32, 33, 64, 16, 64, 1, 16},
                      Shape{RowType::kF32, 4096, 70, 0, 70, 14, 16},
                      Shape{RowType::kBf16, 1, 100, 0, 100, 3, 16},
                      Shape{RowType::kBf16, 17, 1000, 0, 1000, 13, 64},
                      Shape{RowType::kBf16, 128, 777, 32, 701, 50, 32},
                      Shape{RowType::kBf16, 4095, 70, 0, 70, 9, 16}));

TEST(KernelSets, ScalarIsAlwaysFirstAndBestIsSupported) {
  ASSERT_FALSE(SupportedKernelSets().empty());
  EXPECT_EQ(SupportedKernelSets().front()->name, "scalar");
  const KernelSet& best = BestKernelSet();
  EXPECT_NE(std::find(SupportedKernelSets().begin(),
                      SupportedKernelSets().end(), &best),
            SupportedKernelSets().end());
  std::printf("kernel sets on this CPU:");
  for (const KernelSet* set : SupportedKernelSets()) {
    std::printf(" %s", std::string(set->name).c_str());
  }
  std::printf("\n");
}

TEST(Bins, TiesGoToTheLowerSlot) {
  // Two identical rows in the same bin (bins = 16, slots 0 and 16).
  const int dim = 4;
  std::vector<float> panels(32 * dim, 0.f);
  for (int d = 0; d < dim; ++d) {
    panels[F32PanelOffset(0, d, dim)] = 1.f;
    panels[F32PanelOffset(16, d, dim)] = 1.f;
  }
  std::vector<float> bias(32, 0.f);
  std::vector<float> query(dim, 1.f);
  for (const KernelSet* set : SupportedKernelSets()) {
    std::vector<float> scores(16);
    std::vector<int64_t> slots(16);
    BinTable table{scores.data(), slots.data(), 16};
    ResetBins(table, 1);
    RowRange r;
    r.panels = panels.data();
    r.dim = dim;
    r.bias = bias.data();
    r.begin = 0;
    r.end = 32;
    QueryTile q{query.data(), nullptr, 1, dim};
    set->partial_reduce(q, r, table);
    EXPECT_EQ(slots[0], 0) << set->name;
    EXPECT_EQ(scores[0], 4.f) << set->name;
  }
}

TEST(Bins, MergeIsOrderIndependent) {
  std::vector<float> a_scores = {1, 2, 3, -INFINITY};
  std::vector<int64_t> a_slots = {10, 20, 30, kNoSlot};
  std::vector<float> b_scores = {1, 5, 2, 7};
  std::vector<int64_t> b_slots = {4, 21, 31, 3};
  BinTable a{a_scores.data(), a_slots.data(), 4};
  BinTable b{b_scores.data(), b_slots.data(), 4};
  MergeBins(a, b, 1);
  EXPECT_EQ(a_slots, (std::vector<int64_t>{4, 21, 30, 3}));
  EXPECT_EQ(a_scores, (std::vector<float>{1, 5, 3, 7}));
}

TEST(SelectTopK, MatchesSortAndSkipsEmptyBins) {
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> value(0, 20);  // many ties
  std::vector<float> scores(500);
  std::vector<int64_t> slots(500);
  for (int i = 0; i < 500; ++i) {
    scores[i] = static_cast<float>(value(rng));
    slots[i] = i % 7 == 0 ? kNoSlot : 1000 - i;
  }
  std::vector<Candidate> expected;
  for (int i = 0; i < 500; ++i) {
    if (slots[i] != kNoSlot) expected.push_back({scores[i], slots[i]});
  }
  std::sort(
      expected.begin(), expected.end(),
      [](const Candidate& a, const Candidate& b) { return Better(a, b); });
  for (int64_t k : {1, 10, 428, 429, 1000}) {
    std::vector<Candidate> scratch(500), out(k);
    const int64_t n = SelectTopK(scores, slots, k, scratch, out.data());
    ASSERT_EQ(n, std::min<int64_t>(k, expected.size()));
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(out[i].slot, expected[i].slot) << "k=" << k << " i=" << i;
    }
  }
}

TEST(TopKBuffer, MergeKeepsLowerSlotOnTies) {
  std::vector<Candidate> a_items(4), b_items(4);
  TopKBuffer a{a_items.data(), 4, 2, 0, 0}, b{b_items.data(), 4, 2, 0, 0};
  a.Reset();
  b.Reset();
  a.Push(5, 100);
  a.Push(5, 101);
  a.Push(4, 102);
  a.Push(1, 103);  // compacts to {5@100, 5@101}, threshold 5
  b.Push(5, 7);
  a.Merge(b);
  a.Finish();
  ASSERT_EQ(a.size, 2);
  EXPECT_EQ(a.items[0].slot, 7);
  EXPECT_EQ(a.items[1].slot, 100);
}

TEST(Layout, OffsetsAreABijection) {
  for (int dim : {1, 5, 16, 33}) {
    const int padded = PaddedDimBf16(dim);
    std::vector<int> seen_f32(48 * dim, 0), seen_bf16(48 * padded, 0);
    for (int64_t row = 0; row < 48; ++row) {
      for (int d = 0; d < dim; ++d) ++seen_f32[F32PanelOffset(row, d, dim)];
      for (int d = 0; d < padded; ++d) {
        ++seen_bf16[Bf16PanelOffset(row, d, padded)];
      }
    }
    EXPECT_TRUE(std::all_of(seen_f32.begin(), seen_f32.end(),
                            [](int c) { return c == 1; }));
    EXPECT_TRUE(std::all_of(seen_bf16.begin(), seen_bf16.end(),
                            [](int c) { return c == 1; }));
  }
  EXPECT_EQ(RoundUpBins(1), 16);
  EXPECT_EQ(RoundUpBins(17), 32);
  EXPECT_EQ(BinOfSlot(35, 32), 3);
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3F80);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
  EXPECT_EQ(FloatToBf16(1.0f + 1.0f / 256), 0x3F80);
  EXPECT_EQ(FloatToBf16(1.0f + 3.0f / 256), 0x3F82);
  EXPECT_EQ(Bf16ToFloat(0xC000), -2.0f);
}

}  // namespace
}  // namespace peakknn::kernels
