// The second stage: each query's bins sorted best
// first on the device (CUB segmented sort of fold keys, whose unsigned order
// is kernels::Better), so only the first k keys per query are copied back.
// Cost: O(queries * L log L) work; memory 2 * queries * L * 8 bytes.
#include <cub/device/device_segmented_sort.cuh>

#include "kernels/cuda/detail/launch.h"

namespace peakknn::kernels::cuda::detail {
namespace {

constexpr int kThreads = 256;

__global__ void SegmentOffsetsKernel(int64_t* offsets, int64_t queries,
                                     int64_t bins) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i <= queries) offsets[i] = i * bins;
}

}  // namespace

cudaError_t LaunchSortBins(const DeviceBins& bins, int64_t queries,
                           int64_t* offsets, uint64_t* sorted, void* temp,
                           size_t* temp_bytes, cudaStream_t stream) {
  if (temp != nullptr) {
    const int64_t blocks = (queries + 1 + kThreads - 1) / kThreads;
    SegmentOffsetsKernel<<<static_cast<unsigned>(blocks), kThreads, 0,
                           stream>>>(offsets, queries, bins.bins);
    const cudaError_t launched = cudaGetLastError();
    if (launched != cudaSuccess) return launched;
  }
  return cub::DeviceSegmentedSort::SortKeysDescending(
      temp, *temp_bytes, bins.keys, sorted, queries * bins.bins,
      static_cast<int64_t>(queries), offsets, offsets + 1, stream);
}

}  // namespace peakknn::kernels::cuda::detail
