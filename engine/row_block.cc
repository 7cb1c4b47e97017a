#include "engine/row_block.h"

#include <cstdlib>
#include <cstring>

#include "kernels/bf16.h"
#include "kernels/layout.h"

namespace peakknn {
namespace {

int64_t RowElements(int dim, DType dtype) {
  return dtype == DType::kF32 ? kernels::PaddedDimF32(dim)
                              : kernels::PaddedDimBf16(dim);
}

int64_t ElementBytes(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

int64_t DataBytes(int dim, DType dtype, int64_t capacity) {
  const int64_t bytes =
      capacity * RowElements(dim, dtype) * ElementBytes(dtype);
  return (bytes + 63) / 64 * 64;  // aligned_alloc wants a multiple of 64
}

}  // namespace

void RowBlock::FreeDeleter::operator()(void* p) const { std::free(p); }

RowBlock::RowBlock(int dim, DType dtype, kernels::ScoreKind score,
                   int64_t capacity, int64_t slot_base)
    : dim_(dim),
      dtype_(dtype),
      score_(score),
      capacity_(capacity),
      slot_base_(slot_base),
      data_(std::aligned_alloc(64, DataBytes(dim, dtype, capacity))),
      f32_rows_(dtype == DType::kBf16 ? new float[capacity * dim] : nullptr),
      bias_(new float[capacity]),
      ids_(new uint64_t[capacity]) {}

int64_t RowBlock::reserved_bytes() const {
  const int64_t f32_copy =
      f32_rows_ != nullptr ? capacity_ * dim_ * int64_t{sizeof(float)} : 0;
  return DataBytes(dim_, dtype_, capacity_) + f32_copy +
         capacity_ * static_cast<int64_t>(sizeof(float) + sizeof(uint64_t));
}

void RowBlock::WriteRow(int64_t row, uint64_t id, const float* vector) {
  double squared_norm = 0;
  if (dtype_ == DType::kF32) {
    float* data = static_cast<float*>(data_.get());
    for (int d = 0; d < dim_; ++d) {
      data[kernels::F32PanelOffset(row, d, dim_)] = vector[d];
      squared_norm += static_cast<double>(vector[d]) * vector[d];
    }
  } else {
    std::memcpy(f32_rows_.get() + row * dim_, vector, dim_ * sizeof(float));
    uint16_t* data = static_cast<uint16_t*>(data_.get());
    const int padded = kernels::PaddedDimBf16(dim_);
    for (int d = 0; d < padded; ++d) {
      const uint16_t h = d < dim_ ? kernels::FloatToBf16(vector[d]) : 0;
      data[kernels::Bf16PanelOffset(row, d, padded)] = h;
      const double stored = kernels::Bf16ToFloat(h);
      squared_norm += stored * stored;
    }
  }
  bias_[row] = kernels::RowBias(score_, static_cast<float>(squared_norm));
  ids_[row] = id;
}

void RowBlock::ReadRow(int64_t row, float* out) const {
  if (dtype_ == DType::kF32) {
    const float* data = static_cast<const float*>(data_.get());
    for (int d = 0; d < dim_; ++d) {
      out[d] = data[kernels::F32PanelOffset(row, d, dim_)];
    }
  } else {
    std::memcpy(out, f32_rows_.get() + row * dim_, dim_ * sizeof(float));
  }
}

kernels::RowRange RowBlock::Range(int64_t begin, int64_t end,
                                  const uint64_t* dead) const {
  kernels::RowRange range;
  range.panels = data_.get();
  range.type =
      dtype_ == DType::kF32 ? kernels::RowType::kF32 : kernels::RowType::kBf16;
  range.dim = dim_;
  range.bias = bias_.get();
  range.dead = dead;
  range.begin = begin;
  range.end = end;
  range.slot_base = slot_base_;
  return range;
}

}  // namespace peakknn
