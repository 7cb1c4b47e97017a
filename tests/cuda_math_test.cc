// The host/device math of the CUDA backend, checked on the CPU (built by the
// host compiler, runs in every CI job): fold keys order candidates exactly
// as kernels::Better, the bin walk visits each row of a bin once, the shared
// panel dot product is the CPU scalar kernel's score bit for bit, and
// folding keys (in any order, as GPU thread blocks do) yields the CPU's
// PartialReduce bins, tombstones and ties included.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/bf16.h"
#include "kernels/bin_fold.h"
#include "kernels/candidate.h"
#include "kernels/layout.h"
#include "kernels/panel_dot.h"
#include "kernels/scan.h"

namespace peakknn::kernels {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Scores with many exact ties, both zeros, denormals and extremes.
std::vector<float> AwkwardScores(std::mt19937_64& rng) {
  std::vector<float> scores = {0.0f,
                               -0.0f,
                               1.0f,
                               -1.0f,
                               std::numeric_limits<float>::denorm_min(),
                               -std::numeric_limits<float>::denorm_min(),
                               std::numeric_limits<float>::max(),
                               -std::numeric_limits<float>::max(),
                               kInf};
  std::normal_distribution<float> normal(0.0f, 100.0f);
  for (int i = 0; i < 200; ++i) scores.push_back(normal(rng));
  return scores;
}

TEST(FoldKeyTest, UnsignedOrderIsBetter) {
  std::mt19937_64 rng(1);
  const std::vector<float> scores = AwkwardScores(rng);
  const std::vector<int64_t> slots = {
      0, 1, 2, 15, 16, 65535, 65536, kMaxFoldSlot - 1, kMaxFoldSlot};
  for (float a : scores) {
    for (float b : scores) {
      for (int64_t sa : slots) {
        for (int64_t sb : {slots[0], slots[3], slots[7], sa}) {
          ASSERT_EQ(FoldKey(a, sa) > FoldKey(b, sb), Better(a, sa, b, sb))
              << a << "@" << sa << " vs " << b << "@" << sb;
        }
      }
    }
  }
}

TEST(FoldKeyTest, RoundTripsCandidates) {
  std::mt19937_64 rng(2);
  for (float score : AwkwardScores(rng)) {
    for (int64_t slot : {int64_t{0}, int64_t{12345}, kMaxFoldSlot}) {
      const uint64_t key = FoldKey(score, slot);
      ASSERT_NE(key, kEmptyFoldKey);
      const Candidate c = CandidateFromKey(key);
      EXPECT_EQ(c.slot, slot);
      // -0 comes back as +0: equal under Better and as a distance.
      EXPECT_EQ(Bits(c.score), Bits(score == 0.0f ? 0.0f : score)) << score;
    }
  }
}

TEST(FoldKeyTest, TombstoneScoresNeverFold) {
  EXPECT_EQ(FoldKey(-kInf, 7), kEmptyFoldKey);
  EXPECT_EQ(FoldKey(std::nanf(""), 7), kEmptyFoldKey);
  const Candidate empty = CandidateFromKey(kEmptyFoldKey);
  EXPECT_EQ(empty.slot, kNoSlot);
  EXPECT_EQ(empty.score, -kInf);
  // The lowest real key is still above an empty bin.
  EXPECT_GT(FoldKey(-std::numeric_limits<float>::max(), kMaxFoldSlot),
            kEmptyFoldKey);
  uint64_t bin = kEmptyFoldKey;
  FoldIntoBin(&bin, FoldKey(-kInf, 3));
  EXPECT_EQ(bin, kEmptyFoldKey);
}

TEST(FirstRowOfBinTest, WalksEveryRowOfABinOnce) {
  for (int64_t bins : {16, 48, 64, 1024}) {
    for (int64_t slot_base : {0, 16, 1024, 4096 + 48}) {
      const int64_t rows = 3 * bins + 37;
      std::vector<int> seen(rows, 0);
      for (int64_t bin = 0; bin < bins; ++bin) {
        for (int64_t row = FirstRowOfBin(bin, 0, slot_base, bins); row < rows;
             row += bins) {
          ASSERT_EQ(BinOfSlot(slot_base + row, bins), bin);
          ++seen[row];
        }
        // Starting mid-block (a GEMM row tile) lands within one cycle.
        const int64_t from = 2 * kPanelRows;
        const int64_t first = FirstRowOfBin(bin, from, slot_base, bins);
        EXPECT_GE(first, from);
        EXPECT_LT(first, from + bins);
        EXPECT_EQ(BinOfSlot(slot_base + first, bins), bin);
      }
      EXPECT_TRUE(
          std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
    }
  }
}

// A block of random rows in panel layout, with duplicated rows (exact score
// ties) and tombstones.
struct Block {
  RowType type;
  int dim;
  int64_t rows;
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  std::vector<float> bias;
  std::vector<uint64_t> dead;

  RowRange Range(int64_t slot_base) const {
    RowRange r;
    r.panels = type == RowType::kF32 ? static_cast<const void*>(f32.data())
                                     : static_cast<const void*>(bf16.data());
    r.type = type;
    r.dim = dim;
    r.bias = bias.data();
    r.dead = dead.data();
    r.begin = 0;
    r.end = rows;
    r.slot_base = slot_base;
    return r;
  }
  const float* PanelF32(int64_t row) const {
    return f32.data() + row / kPanelRows * kPanelRows * dim;
  }
  const uint16_t* PanelBf16(int64_t row) const {
    return bf16.data() + row / kPanelRows * kPanelRows * PaddedDimBf16(dim);
  }
};

Block MakeBlock(RowType type, int dim, int64_t rows, std::mt19937_64& rng) {
  Block b{type, dim, rows, {}, {}, {}, {}};
  const int64_t capacity = (rows + kPanelRows - 1) / kPanelRows * kPanelRows;
  const int padded = PaddedDimBf16(dim);
  b.f32.assign(capacity * dim, 0.0f);
  b.bf16.assign(capacity * padded, 0);
  b.bias.assign(capacity, 0.0f);
  b.dead.assign((capacity + 63) / 64, 0);
  std::normal_distribution<float> normal;
  std::vector<float> v(dim);
  for (int64_t r = 0; r < rows; ++r) {
    // Every fifth row repeats the previous one: equal scores, higher slot.
    if (r % 5 != 4) {
      for (float& x : v) x = normal(rng);
    }
    for (int d = 0; d < dim; ++d) {
      b.f32[F32PanelOffset(r, d, dim)] = v[d];
      b.bf16[Bf16PanelOffset(r, d, padded)] = FloatToBf16(v[d]);
    }
    b.bias[r] = r % 5 == 4 ? b.bias[r - 1] : normal(rng);
    if (r % 7 == 3) b.dead[r / 64] |= uint64_t{1} << (r % 64);
  }
  return b;
}

struct Queries {
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  int64_t count;
  int stride_f32;
  int stride_bf16;

  QueryTile Tile(RowType type) const {
    QueryTile t;
    t.count = count;
    if (type == RowType::kF32) {
      t.f32 = f32.data();
      t.stride = stride_f32;
    } else {
      t.bf16 = bf16.data();
      t.stride = stride_bf16;
    }
    return t;
  }
};

Queries MakeQueries(int dim, int64_t count, std::mt19937_64& rng) {
  Queries q{{}, {}, count, dim, PaddedDimBf16(dim)};
  std::normal_distribution<float> normal;
  q.f32.resize(count * dim);
  q.bf16.assign(count * q.stride_bf16, 0);
  for (int64_t i = 0; i < count; ++i) {
    for (int d = 0; d < dim; ++d) {
      q.f32[i * dim + d] = normal(rng);
      q.bf16[i * q.stride_bf16 + d] = FloatToBf16(q.f32[i * dim + d]);
    }
  }
  return q;
}

const KernelSet& Scalar() { return *SupportedKernelSets().front(); }

// The score the device's FMA-chain kernel computes for (query, row).
float DeviceScore(const Block& b, const Queries& q, int64_t query,
                  int64_t row) {
  const int lane = static_cast<int>(row % kPanelRows);
  const float dot =
      b.type == RowType::kF32
          ? PanelDotF32(q.f32.data() + query * q.stride_f32, b.PanelF32(row),
                        lane, b.dim)
          : PanelDotBf16(q.bf16.data() + query * q.stride_bf16,
                         b.PanelBf16(row), lane, PaddedDimBf16(b.dim));
  return IsDead(b.dead.data(), row) ? -kInf : dot + b.bias[row];
}

class SharedMathTest : public ::testing::TestWithParam<RowType> {};

TEST_P(SharedMathTest, PanelDotIsTheScalarKernelsScore) {
  std::mt19937_64 rng(3);
  for (int dim : {1, 2, 7, 33, 128}) {
    const Block block = MakeBlock(GetParam(), dim, 53, rng);
    const Queries queries = MakeQueries(dim, 5, rng);
    // One bin per slot: the bins hold every row's score.
    const int64_t bins = RoundUpBins(block.rows);
    std::vector<float> scores(queries.count * bins);
    std::vector<int64_t> slots(queries.count * bins);
    const BinTable table{scores.data(), slots.data(), bins};
    ResetBins(table, queries.count);
    Scalar().partial_reduce(queries.Tile(GetParam()), block.Range(0), table);
    for (int64_t q = 0; q < queries.count; ++q) {
      for (int64_t row = 0; row < block.rows; ++row) {
        const float expected = table.query_scores(q)[row];
        const float got = DeviceScore(block, queries, q, row);
        ASSERT_EQ(Bits(got), Bits(expected))
            << "dim " << dim << " query " << q << " row " << row;
      }
    }
  }
}

TEST_P(SharedMathTest, KeyFoldInAnyOrderEqualsCpuPartialReduce) {
  std::mt19937_64 rng(4);
  const int dim = 19;
  const int64_t slot_base = 4096 + 32;
  const Block block = MakeBlock(GetParam(), dim, 611, rng);
  const Queries queries = MakeQueries(dim, 6, rng);
  for (int64_t bins : {16, 32, 80, 1024}) {
    std::vector<float> scores(queries.count * bins);
    std::vector<int64_t> slots(queries.count * bins);
    const BinTable table{scores.data(), slots.data(), bins};
    ResetBins(table, queries.count);
    Scalar().partial_reduce(queries.Tile(GetParam()), block.Range(slot_base),
                            table);

    // Rows in reverse: the device folds bins from many thread blocks in no
    // particular order, combining with a max of keys.
    std::vector<uint64_t> keys(queries.count * bins, kEmptyFoldKey);
    for (int64_t row = block.rows - 1; row >= 0; --row) {
      const int64_t bin = BinOfSlot(slot_base + row, bins);
      for (int64_t q = 0; q < queries.count; ++q) {
        FoldIntoBin(
            &keys[q * bins + bin],
            FoldKey(DeviceScore(block, queries, q, row), slot_base + row));
      }
    }
    for (int64_t i = 0; i < queries.count * bins; ++i) {
      const Candidate c = CandidateFromKey(keys[i]);
      ASSERT_EQ(c.slot, slots[i]) << "bins " << bins << " entry " << i;
      if (c.slot != kNoSlot) {
        ASSERT_EQ(c.score, scores[i]) << "bins " << bins << " entry " << i;
      }
    }

    // Second stage: sorting keys descending and taking k is SelectTopK.
    const int64_t k = 10;
    for (int64_t q = 0; q < queries.count; ++q) {
      std::vector<uint64_t> sorted(keys.begin() + q * bins,
                                   keys.begin() + (q + 1) * bins);
      std::sort(sorted.rbegin(), sorted.rend());
      std::vector<Candidate> scratch(bins);
      std::vector<Candidate> expected(k);
      const int64_t n =
          SelectTopK({table.query_scores(q), static_cast<size_t>(bins)},
                     {table.query_slots(q), static_cast<size_t>(bins)}, k,
                     scratch, expected.data());
      for (int64_t i = 0; i < k; ++i) {
        const Candidate got = CandidateFromKey(sorted[i]);
        if (i >= n) {
          ASSERT_EQ(sorted[i], kEmptyFoldKey);
          continue;
        }
        ASSERT_EQ(got.slot, expected[i].slot) << "query " << q << " rank " << i;
        ASSERT_EQ(got.score, expected[i].score);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(RowTypes, SharedMathTest,
                         ::testing::Values(RowType::kF32, RowType::kBf16),
                         [](const auto& param_info) {
                           return param_info.param == RowType::kF32 ? "f32"
                                                                    : "bf16";
                         });

}  // namespace
}  // namespace peakknn::kernels
