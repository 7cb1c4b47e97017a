// Row packing (kernels/pack.h): every kernel set writes the same panel bits
// and bias bits as the scalar reference, and only the rows it is given,
// over odd dims, partial first and last panels, both row types and both
// score kinds.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/bf16.h"
#include "kernels/layout.h"
#include "kernels/pack.h"
#include "kernels/scan.h"

namespace peakknn::kernels {
namespace {

// Not a value any packer writes: a NaN, which the engine never stores.
constexpr uint32_t kUnwritten32 = 0xFFC0DEADu;
constexpr uint16_t kUnwritten16 = 0xFFEEu;

// Row-major rows: Gaussian values mixed with the awkward ones (bf16
// rounding ties, subnormals, signed zeros, values that round to bf16
// infinity, squares that overflow a float).
std::vector<float> MakeRows(int64_t count, int dim, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<uint32_t> bits;
  std::vector<float> rows(count * dim);
  for (size_t i = 0; i < rows.size(); ++i) {
    switch (bits(rng) % 16) {
      case 0:  // exactly halfway between two bf16 values
        rows[i] = BitsToFloat((bits(rng) & 0xBFFF0000u) | 0x8000u);
        break;
      case 1:
        rows[i] = BitsToFloat(bits(rng) & 0x807FFFFFu);  // subnormal
        break;
      case 2:
        rows[i] = (bits(rng) & 1) != 0 ? -0.0f : 0.0f;
        break;
      case 3:
        rows[i] = (bits(rng) & 1) != 0 ? -3.4e38f : 2e19f;
        break;
      default:
        rows[i] = normal(rng);
    }
  }
  return rows;
}

struct Packed {
  std::vector<uint32_t> f32;  // float bits
  std::vector<uint16_t> bf16;
  std::vector<uint32_t> bias;  // float bits
};

// Packs rows [first_row, first_row + count) of a block of `capacity` rows
// with `set`, into storage that starts out unwritten.
Packed Pack(const KernelSet& set, RowType type, ScoreKind score, int dim,
            int64_t capacity, int64_t first_row, const std::vector<float>& rows,
            int64_t count) {
  Packed out;
  PanelTarget target;
  if (type == RowType::kF32) {
    out.f32.assign(capacity * dim, kUnwritten32);
    target.panels = out.f32.data();
  } else {
    out.bf16.assign(capacity * PaddedDimBf16(dim), kUnwritten16);
    target.panels = out.bf16.data();
  }
  out.bias.assign(capacity, kUnwritten32);
  target.bias = reinterpret_cast<float*>(out.bias.data());
  target.type = type;
  target.dim = dim;
  target.score = score;
  set.pack_rows(rows.data(), count, first_row, target);
  return out;
}

struct RowRun {
  int64_t first_row;
  int64_t count;
};

class PackRowsTest
    : public ::testing::TestWithParam<std::tuple<RowType, ScoreKind, int>> {};

TEST_P(PackRowsTest, EverySetMatchesScalarBitForBit) {
  const auto [type, score, dim] = GetParam();
  // Whole panels, partial first and last panels, a run inside one panel.
  for (const RowRun run :
       {RowRun{0, 16}, RowRun{0, 1}, RowRun{5, 11}, RowRun{5, 40},
        RowRun{16, 32}, RowRun{3, 61}, RowRun{0, 67}, RowRun{33, 2}}) {
    SCOPED_TRACE("rows " + std::to_string(run.first_row) + " + " +
                 std::to_string(run.count));
    std::mt19937_64 rng(dim * 131 + run.first_row * 7 + run.count);
    const std::vector<float> rows = MakeRows(run.count, dim, rng);
    const int64_t capacity =
        (run.first_row + run.count + kPanelRows - 1) / kPanelRows * kPanelRows +
        kPanelRows;
    const Packed reference =
        Pack(*SupportedKernelSets().front(), type, score, dim, capacity,
             run.first_row, rows, run.count);
    for (const KernelSet* set : SupportedKernelSets()) {
      SCOPED_TRACE(std::string(set->name));
      const Packed got = Pack(*set, type, score, dim, capacity, run.first_row,
                              rows, run.count);
      ASSERT_EQ(got.f32, reference.f32);
      ASSERT_EQ(got.bf16, reference.bf16);
      ASSERT_EQ(got.bias, reference.bias);
    }
  }
}

TEST_P(PackRowsTest, ScalarWritesOnlyItsRowsWithTheirValues) {
  const auto [type, score, dim] = GetParam();
  const int64_t first_row = 5, count = 30, capacity = 64;
  std::mt19937_64 rng(dim);
  const std::vector<float> rows = MakeRows(count, dim, rng);
  const Packed packed = Pack(*SupportedKernelSets().front(), type, score, dim,
                             capacity, first_row, rows, count);
  const int padded = PaddedDimBf16(dim);
  for (int64_t row = 0; row < capacity; ++row) {
    const bool written = row >= first_row && row < first_row + count;
    const float* v = rows.data() + (row - first_row) * dim;
    if (type == RowType::kF32) {
      for (int d = 0; d < dim; ++d) {
        const uint32_t got = packed.f32[F32PanelOffset(row, d, dim)];
        ASSERT_EQ(got, written ? FloatBits(v[d]) : kUnwritten32)
            << "row " << row << " d " << d;
      }
    } else {
      for (int d = 0; d < padded; ++d) {
        const uint16_t want = !written  ? kUnwritten16
                              : d < dim ? FloatToBf16(v[d])
                                        : uint16_t{0};  // the pad
        ASSERT_EQ(packed.bf16[Bf16PanelOffset(row, d, padded)], want)
            << "row " << row << " d " << d;
      }
    }
    if (!written) {
      ASSERT_EQ(packed.bias[row], kUnwritten32) << "row " << row;
    } else if (score == ScoreKind::kInnerProduct) {
      ASSERT_EQ(packed.bias[row], FloatBits(0.0f)) << "row " << row;
    }
  }
}

std::string ShapeName(
    const ::testing::TestParamInfo<PackRowsTest::ParamType>& info) {
  const auto [type, score, dim] = info.param;
  return std::string(type == RowType::kF32 ? "f32" : "bf16") +
         (score == ScoreKind::kL2 ? "_l2_dim" : "_ip_dim") +
         std::to_string(dim);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PackRowsTest,
    ::testing::Combine(
        ::testing::Values(RowType::kF32, RowType::kBf16),
        ::testing::Values(ScoreKind::kL2, ScoreKind::kInnerProduct),
        ::testing::Values(1, 2, 7, 15, 16, 17, 31, 32, 33, 128, 129)),
    ShapeName);

}  // namespace
}  // namespace peakknn::kernels
