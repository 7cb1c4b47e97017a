// Fused FMA-chain scan: the bit-exact device path.
//
// Each thread owns one bin b and kQueriesPerThread queries. It walks the
// rows of its bin in slot order (r, r + L, r + 2L, ...) and computes each
// score with the same fma chain as the CPU scalar kernel
// (kernels/panel_dot.h: d = 0..dim-1 from 0, then + bias). The scores are
// therefore bit-identical to the CPU's, and since bins fold with
// kernels::Better (as fold keys) the bin winners and the final top-k are
// identical too. Adjacent threads own adjacent bins, i.e. adjacent rows of a
// panel, so row loads are coalesced; query values are warp-uniform
// broadcasts (L1).
//
// Work: O(queries * rows * dim) FMAs on the CUDA cores (not tensor cores).
// The bin cycles of a block are split across grid.z and the partial winners
// combined with a 64-bit atomicMax, which is order independent.
#include "kernels/bin_fold.h"
#include "kernels/cuda/detail/launch.h"
#include "kernels/layout.h"
#include "kernels/panel_dot.h"

namespace peakknn::kernels::cuda::detail {
namespace {

constexpr int kQueriesPerThread = 8;
constexpr int kThreads = 128;

// Dot products of row `row` with queries q0 .. q0 + kQueriesPerThread - 1
// (clamped to the last query; the caller ignores the extras), computed by
// the shared definition of a score (kernels/panel_dot.h). The row's values
// are re-read per query from L1: simplicity of the exact path over speed.
template <RowType kType>
__device__ void RowDots(const DeviceQueries& queries, int64_t q0,
                        const DeviceRows& rows, int64_t row,
                        float (&acc)[kQueriesPerThread]) {
  const int lane = static_cast<int>(row % kPanelRows);
  const int64_t panel = row / kPanelRows;
#pragma unroll
  for (int i = 0; i < kQueriesPerThread; ++i) {
    const int64_t q = q0 + i < queries.count ? q0 + i : queries.count - 1;
    if constexpr (kType == RowType::kF32) {
      acc[i] =
          PanelDotF32(queries.f32 + q * queries.stride,
                      static_cast<const float*>(rows.panels) +
                          panel * kPanelRows * static_cast<int64_t>(rows.dim),
                      lane, rows.dim);
    } else {
      const int padded = PaddedDimBf16(rows.dim);
      acc[i] =
          PanelDotBf16(queries.bf16 + q * queries.stride,
                       static_cast<const uint16_t*>(rows.panels) +
                           panel * kPanelRows * static_cast<int64_t>(padded),
                       lane, padded);
    }
  }
}

template <RowType kType>
__global__ void __launch_bounds__(kThreads)
    FmaChainFoldKernel(DeviceQueries queries, DeviceRows rows, DeviceBins bins,
                       int64_t cycles_per_split) {
  const int64_t bin = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (bin >= bins.bins) return;
  const int64_t q0 = static_cast<int64_t>(blockIdx.y) * kQueriesPerThread;
  const int64_t first = FirstRowOfBin(bin, 0, rows.slot_base, bins.bins);
  const int64_t c_begin = blockIdx.z * cycles_per_split;

  uint64_t best[kQueriesPerThread];
#pragma unroll
  for (int i = 0; i < kQueriesPerThread; ++i) best[i] = kEmptyFoldKey;

  for (int64_t c = c_begin; c < c_begin + cycles_per_split; ++c) {
    const int64_t row = first + c * bins.bins;
    if (row >= rows.rows) break;
    if (IsDead(rows.dead, row)) continue;
    float acc[kQueriesPerThread];
    RowDots<kType>(queries, q0, rows, row, acc);
    const float bias = rows.bias[row];
    const int64_t slot = rows.slot_base + row;
#pragma unroll
    for (int i = 0; i < kQueriesPerThread; ++i) {
      FoldIntoBin(&best[i], FoldKey(acc[i] + bias, slot));
    }
  }
#pragma unroll
  for (int i = 0; i < kQueriesPerThread; ++i) {
    if (q0 + i < queries.count && best[i] != kEmptyFoldKey) {
      atomicMax(reinterpret_cast<unsigned long long*>(
                    bins.keys + (q0 + i) * bins.bins + bin),
                static_cast<unsigned long long>(best[i]));
    }
  }
}

}  // namespace

CycleSplit SplitCycles(int64_t cycles, int64_t threads_per_split,
                       int64_t target_threads) {
  CycleSplit split;
  int64_t splits =
      threads_per_split > 0
          ? (target_threads + threads_per_split - 1) / threads_per_split
          : 1;
  if (splits > cycles) splits = cycles;
  if (splits > 65535) splits = 65535;  // grid.z limit
  if (splits < 1) splits = 1;
  split.cycles_per_split = (cycles + splits - 1) / splits;
  // Drop splits that would get no cycle after rounding up.
  split.splits = static_cast<int>(split.cycles_per_split > 0
                                      ? (cycles + split.cycles_per_split - 1) /
                                            split.cycles_per_split
                                      : 1);
  if (split.splits < 1) split.splits = 1;
  return split;
}

cudaError_t LaunchFmaChainFold(const DeviceQueries& queries,
                               const DeviceRows& rows, const DeviceBins& bins,
                               int64_t target_threads, cudaStream_t stream) {
  if (queries.count == 0 || rows.rows == 0) return cudaSuccess;
  const int64_t bin_blocks = (bins.bins + kThreads - 1) / kThreads;
  const int64_t query_blocks =
      (queries.count + kQueriesPerThread - 1) / kQueriesPerThread;
  const int64_t cycles = (rows.rows + bins.bins - 1) / bins.bins;
  const CycleSplit split =
      SplitCycles(cycles, bin_blocks * kThreads * query_blocks, target_threads);
  const dim3 grid(static_cast<unsigned>(bin_blocks),
                  static_cast<unsigned>(query_blocks),
                  static_cast<unsigned>(split.splits));
  if (rows.type == RowType::kF32) {
    FmaChainFoldKernel<RowType::kF32><<<grid, kThreads, 0, stream>>>(
        queries, rows, bins, split.cycles_per_split);
  } else {
    FmaChainFoldKernel<RowType::kBf16><<<grid, kThreads, 0, stream>>>(
        queries, rows, bins, split.cycles_per_split);
  }
  return cudaGetLastError();
}

}  // namespace peakknn::kernels::cuda::detail
