// The reference path's kernels: repack panel rows into a plain row-major
// matrix for cuBLAS, then fold the GEMM's score tile into the bins
// (PartialReduce). The score tile goes through global memory: that traffic
// is what the fused kernels avoid.
#include "kernels/bin_fold.h"
#include "kernels/cuda/detail/launch.h"
#include "kernels/layout.h"

namespace peakknn::kernels::cuda::detail {
namespace {

constexpr int kThreads = 256;

// One thread per output element; consecutive threads write consecutive dims.
template <typename T, RowType kType>
__global__ void RepackRowsKernel(DeviceRows rows, int64_t begin, int64_t count,
                                 T* out) {
  const int padded =
      kType == RowType::kF32 ? PaddedDimF32(rows.dim) : PaddedDimBf16(rows.dim);
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= count * padded) return;
  const int64_t row = begin + i / padded;
  const int d = static_cast<int>(i % padded);
  const T* panels = static_cast<const T*>(rows.panels);
  if constexpr (kType == RowType::kF32) {
    out[i] = panels[F32PanelOffset(row, d, rows.dim)];
  } else {
    out[i] = panels[Bf16PanelOffset(row, d, padded)];
  }
}

// One thread per (query, bin): folds the tile's rows of that bin in slot
// order. Each (query, bin) has one thread per launch and launches on a
// stream are ordered, so a plain read-modify-write is race free.
__global__ void ReduceScoreTileKernel(const float* scores, int64_t queries,
                                      DeviceRows rows, int64_t begin,
                                      int64_t count, DeviceBins bins) {
  const int64_t bin = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t q = blockIdx.y;
  if (bin >= bins.bins || q >= queries) return;
  uint64_t best = kEmptyFoldKey;
  for (int64_t row = FirstRowOfBin(bin, begin, rows.slot_base, bins.bins);
       row < begin + count; row += bins.bins) {
    if (IsDead(rows.dead, row)) continue;
    FoldIntoBin(&best,
                FoldKey(scores[q * count + (row - begin)] + rows.bias[row],
                        rows.slot_base + row));
  }
  FoldIntoBin(&bins.keys[q * bins.bins + bin], best);
}

}  // namespace

cudaError_t LaunchRepackRows(const DeviceRows& rows, int64_t begin,
                             int64_t count, void* out, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  const int padded = rows.type == RowType::kF32 ? PaddedDimF32(rows.dim)
                                                : PaddedDimBf16(rows.dim);
  const int64_t blocks = (count * padded + kThreads - 1) / kThreads;
  if (rows.type == RowType::kF32) {
    RepackRowsKernel<float, RowType::kF32>
        <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
            rows, begin, count, static_cast<float*>(out));
  } else {
    RepackRowsKernel<uint16_t, RowType::kBf16>
        <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
            rows, begin, count, static_cast<uint16_t*>(out));
  }
  return cudaGetLastError();
}

cudaError_t LaunchReduceScoreTile(const float* scores, int64_t queries,
                                  const DeviceRows& rows, int64_t begin,
                                  int64_t count, const DeviceBins& bins,
                                  cudaStream_t stream) {
  if (queries == 0 || count == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>((bins.bins + kThreads - 1) / kThreads),
                  static_cast<unsigned>(queries));
  ReduceScoreTileKernel<<<grid, kThreads, 0, stream>>>(scores, queries, rows,
                                                       begin, count, bins);
  return cudaGetLastError();
}

}  // namespace peakknn::kernels::cuda::detail
