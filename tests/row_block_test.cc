// RowBlock: bulk writes store exactly what writing one row at a time
// through the layout functions stores (the per-row writer the engine used
// before bulk packing, kept here as the oracle), and a block's memory is
// what it says.
#include "engine/row_block.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/bf16.h"
#include "kernels/layout.h"

namespace peakknn {
namespace {

// The previous RowBlock::WriteRow, row by row, into plain vectors.
struct OracleBlock {
  OracleBlock(int dim_in, DType dtype_in, kernels::ScoreKind score_in,
              int64_t capacity)
      : dim(dim_in),
        dtype(dtype_in),
        score(score_in),
        f32(dtype == DType::kF32 ? capacity * dim : 0),
        bf16(dtype == DType::kBf16 ? capacity * kernels::PaddedDimBf16(dim)
                                   : 0),
        f32_rows(dtype == DType::kBf16 ? capacity * dim : 0),
        bias(capacity),
        ids(capacity) {}

  void WriteRow(int64_t row, uint64_t id, const float* vector) {
    double squared_norm = 0;
    if (dtype == DType::kF32) {
      for (int d = 0; d < dim; ++d) {
        f32[kernels::F32PanelOffset(row, d, dim)] = vector[d];
        squared_norm += static_cast<double>(vector[d]) * vector[d];
      }
    } else {
      std::memcpy(f32_rows.data() + row * dim, vector, dim * sizeof(float));
      const int padded = kernels::PaddedDimBf16(dim);
      for (int d = 0; d < padded; ++d) {
        const uint16_t h = d < dim ? kernels::FloatToBf16(vector[d]) : 0;
        bf16[kernels::Bf16PanelOffset(row, d, padded)] = h;
        const double stored = kernels::Bf16ToFloat(h);
        squared_norm += stored * stored;
      }
    }
    bias[row] = kernels::RowBias(score, static_cast<float>(squared_norm));
    ids[row] = id;
  }

  int dim;
  DType dtype;
  kernels::ScoreKind score;
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  std::vector<float> f32_rows;
  std::vector<float> bias;
  std::vector<uint64_t> ids;
};

template <typename T>
void ExpectSameBytes(const T* got, const std::vector<T>& want,
                     const char* what) {
  ASSERT_EQ(std::memcmp(got, want.data(), want.size() * sizeof(T)), 0)
      << what << " differ";
}

class RowBlockTest : public ::testing::TestWithParam<
                         std::tuple<DType, kernels::ScoreKind, int>> {};

TEST_P(RowBlockTest, BulkWritesMatchRowByRowWritesBitForBit) {
  const auto [dtype, score, dim] = GetParam();
  const int64_t capacity = 208;  // 13 panels
  std::mt19937_64 rng(dim);
  std::normal_distribution<float> normal;
  std::vector<float> vectors(capacity * dim);
  for (float& v : vectors) v = normal(rng);
  std::vector<uint64_t> ids(capacity);
  for (int64_t i = 0; i < capacity; ++i) ids[i] = 1000003 * i + 7;

  OracleBlock oracle(dim, dtype, score, capacity);
  for (int64_t row = 0; row < capacity; ++row) {
    oracle.WriteRow(row, ids[row], vectors.data() + row * dim);
  }
  // Runs starting inside and at panel boundaries, shorter than, equal to
  // and longer than a panel, filling the block exactly.
  RowBlock block(dim, dtype, score, capacity, /*slot_base=*/4096,
                 /*pool=*/nullptr);
  int64_t row = 0;
  for (int64_t run : {1, 5, 10, 16, 3, 45, 16, 64, 48}) {
    block.WriteRows(row, std::span<const uint64_t>(ids).subspan(row, run),
                    vectors.data() + row * dim);
    row += run;
  }
  ASSERT_EQ(row, capacity);

  if (dtype == DType::kF32) {
    ExpectSameBytes(static_cast<const float*>(block.panels()), oracle.f32,
                    "f32 panels");
    EXPECT_EQ(block.f32_rows(), nullptr);
  } else {
    ExpectSameBytes(static_cast<const uint16_t*>(block.panels()), oracle.bf16,
                    "bf16 panels");
    ExpectSameBytes(block.f32_rows(), oracle.f32_rows, "f32 row copies");
  }
  ExpectSameBytes(block.bias(), oracle.bias, "biases");
  ExpectSameBytes(block.ids(), oracle.ids, "ids");
  std::vector<float> back(dim);
  for (int64_t r = 0; r < capacity; r += 37) {
    block.ReadRow(r, back.data());
    ASSERT_EQ(
        std::memcmp(back.data(), vectors.data() + r * dim, dim * sizeof(float)),
        0)
        << "row " << r;
  }
}

TEST_P(RowBlockTest, AllocatesWhatItReports) {
  const auto [dtype, score, dim] = GetParam();
  for (int64_t capacity : {16, 4096}) {
    RowBlock block(dim, dtype, score, capacity, 0, /*pool=*/nullptr);
    const int64_t needed = capacity * RowBlock::RowBytes(dim, dtype);
    EXPECT_GE(block.allocated_bytes(), needed);
    EXPECT_LT(block.allocated_bytes(), needed + 4096);
    EXPECT_EQ(block.allocated_bytes() % 4096, 0);
  }
  const int64_t per_dim = dtype == DType::kF32 ? 4 : 6;
  EXPECT_EQ(RowBlock::RowBytes(dim, dtype),
            per_dim * dim + 12 + (dtype == DType::kBf16 ? 2 * (dim & 1) : 0));
}

std::string ShapeName(
    const ::testing::TestParamInfo<RowBlockTest::ParamType>& info) {
  const auto [dtype, score, dim] = info.param;
  return std::string(dtype == DType::kF32 ? "f32" : "bf16") +
         (score == kernels::ScoreKind::kL2 ? "_l2_dim" : "_ip_dim") +
         std::to_string(dim);
}

// COSINE stores normalised rows with the inner-product bias: the same
// block path as IP.
INSTANTIATE_TEST_SUITE_P(
    Shapes, RowBlockTest,
    ::testing::Combine(::testing::Values(DType::kF32, DType::kBf16),
                       ::testing::Values(kernels::ScoreKind::kL2,
                                         kernels::ScoreKind::kInnerProduct),
                       ::testing::Values(1, 2, 7, 16, 33, 128, 129)),
    ShapeName);

}  // namespace
}  // namespace peakknn
