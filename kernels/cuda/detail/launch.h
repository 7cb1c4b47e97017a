// Raw kernel launchers (nvcc-compiled, kernels/cuda/detail/*.cu). They only
// enqueue work on `stream` and return the launch error; the public API
// (kernels/cuda/device_scan.h) validates arguments and turns errors into
// absl::Status. Callers guarantee the preconditions stated here.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/device_types.h"

namespace peakknn::kernels::cuda::detail {

// Splits the bin cycles of a block across grid.z so that about
// `target_threads` threads run; returns (splits, cycles per split).
struct CycleSplit {
  int splits = 1;
  int64_t cycles_per_split = 0;
};
CycleSplit SplitCycles(int64_t cycles, int64_t threads_per_split,
                       int64_t target_threads);

// Fused FMA-chain scan: scores bit-identical to the CPU scalar kernel
// (kernels/panel_dot.h), folded into bins with atomicMax. f32 or bf16 rows.
cudaError_t LaunchFmaChainFold(const DeviceQueries& queries,
                               const DeviceRows& rows, const DeviceBins& bins,
                               int64_t target_threads, cudaStream_t stream);

// Fused tensor-core scan (bf16 rows only; sm_80+ wmma, f32 accumulate).
cudaError_t LaunchTensorCoreFold(const DeviceQueries& queries,
                                 const DeviceRows& rows, const DeviceBins& bins,
                                 int64_t target_threads, cudaStream_t stream);

// Copies rows [begin, begin + count) from panel layout into `out`,
// row-major [count][padded dim] of the rows' element type.
cudaError_t LaunchRepackRows(const DeviceRows& rows, int64_t begin,
                             int64_t count, void* out, cudaStream_t stream);

// Folds a score tile (scores[q * count + i] = dot of query q and row
// begin + i, from the GEMM) plus bias into the bins; tombstones skipped.
cudaError_t LaunchReduceScoreTile(const float* scores, int64_t queries,
                                  const DeviceRows& rows, int64_t begin,
                                  int64_t count, const DeviceBins& bins,
                                  cudaStream_t stream);

// Sorts each query's bins descending (best first) into `sorted`.
// `offsets` holds queries + 1 int64 values of scratch. temp_bytes == 0 with
// temp == nullptr asks for the size (written to *temp_bytes).
cudaError_t LaunchSortBins(const DeviceBins& bins, int64_t queries,
                           int64_t* offsets, uint64_t* sorted, void* temp,
                           size_t* temp_bytes, cudaStream_t stream);

}  // namespace peakknn::kernels::cuda::detail
