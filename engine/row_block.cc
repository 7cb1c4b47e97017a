#include "engine/row_block.h"

#include <cstring>

#include "kernels/layout.h"

namespace peakknn {
namespace {

int64_t PanelBytesPerRow(int dim, DType dtype) {
  return dtype == DType::kF32 ? int64_t{4} * kernels::PaddedDimF32(dim)
                              : int64_t{2} * kernels::PaddedDimBf16(dim);
}

int64_t F32CopyBytesPerRow(int dim, DType dtype) {
  return dtype == DType::kBf16 ? int64_t{4} * dim : 0;
}

constexpr int64_t kBiasBytes = sizeof(float);
constexpr int64_t kIdBytes = sizeof(uint64_t);

kernels::RowType RowTypeOf(DType dtype) {
  return dtype == DType::kF32 ? kernels::RowType::kF32
                              : kernels::RowType::kBf16;
}

}  // namespace

int64_t RowBlock::RowBytes(int dim, DType dtype) {
  return PanelBytesPerRow(dim, dtype) + F32CopyBytesPerRow(dim, dtype) +
         kBiasBytes + kIdBytes;
}

RowBlock::RowBlock(int dim, DType dtype, kernels::ScoreKind score,
                   int64_t capacity, int64_t slot_base, ThreadPool* pool)
    : dim_(dim),
      dtype_(dtype),
      score_(score),
      capacity_(capacity),
      slot_base_(slot_base),
      memory_(capacity * RowBytes(dim, dtype), pool) {
  char* next = static_cast<char*>(memory_.data());
  const auto take = [&](int64_t bytes_per_row) {
    char* region = next;
    next += capacity * bytes_per_row;
    return region;
  };
  panels_ = take(PanelBytesPerRow(dim, dtype));
  f32_rows_ =
      dtype == DType::kBf16
          ? reinterpret_cast<float*>(take(F32CopyBytesPerRow(dim, dtype)))
          : nullptr;
  bias_ = reinterpret_cast<float*>(take(kBiasBytes));
  ids_ = reinterpret_cast<uint64_t*>(take(kIdBytes));
}

void RowBlock::WriteRows(int64_t first_row, std::span<const uint64_t> ids,
                         const float* vectors) {
  const int64_t count = static_cast<int64_t>(ids.size());
  kernels::PanelTarget target;
  target.panels = panels_;
  target.bias = bias_;
  target.type = RowTypeOf(dtype_);
  target.dim = dim_;
  target.score = score_;
  kernels::BestKernelSet().pack_rows(vectors, count, first_row, target);
  std::memcpy(ids_ + first_row, ids.data(), count * sizeof(uint64_t));
  if (f32_rows_ != nullptr) {
    std::memcpy(f32_rows_ + first_row * dim_, vectors,
                count * dim_ * sizeof(float));
  }
}

void RowBlock::ReadRow(int64_t row, float* out) const {
  if (dtype_ == DType::kF32) {
    const float* data = static_cast<const float*>(panels_);
    for (int d = 0; d < dim_; ++d) {
      out[d] = data[kernels::F32PanelOffset(row, d, dim_)];
    }
  } else {
    std::memcpy(out, f32_rows_ + row * dim_, dim_ * sizeof(float));
  }
}

kernels::RowRange RowBlock::Range(int64_t begin, int64_t end,
                                  const uint64_t* dead) const {
  kernels::RowRange range;
  range.panels = panels_;
  range.type = RowTypeOf(dtype_);
  range.dim = dim_;
  range.bias = bias_;
  range.dead = dead;
  range.begin = begin;
  range.end = end;
  range.slot_base = slot_base_;
  return range;
}

}  // namespace peakknn
