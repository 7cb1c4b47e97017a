// Fused tensor-core scan for bf16 rows: the fast device path.
//
// A thread block owns a tile of 64 queries x 64 consecutive bins and walks
// the block's rows one bin cycle (L rows) at a time: the rows of bins
// b0 .. b0+63 in cycle c are 64 consecutive rows (4 panels), because bins
// are strided. For each cycle it computes the 64 x 64 score tile with wmma
// (bf16 inputs, f32 accumulate, m16n16k16; sm_80+), stages it in shared
// memory, adds bias, skips tombstones and folds each score into the
// thread's bins held in registers. Only the final bin winners reach global
// memory (64-bit atomicMax of fold keys, so grid.z splits of the cycles
// combine in any order). The Q x N score matrix is never written.
//
// Accuracy: products of bf16 values are exact in f32, but the tensor cores
// sum them in their own order, so scores differ from the CPU's sequential
// fma chain by rounding (a few ulps of the dot product's magnitude). Results
// are equal to the CPU's up to near-ties; the FMA-chain path is the
// bit-identical one.
//
// Work per cycle: 64 * 64 * padded_dim MACs on tensor cores; operand tiles
// of 32 dims are loaded through shared memory (A: queries, row-major; B: the
// panels, transposed into [row][d] so they load as a col-major matrix_b).
#include <mma.h>

#include "kernels/bin_fold.h"
#include "kernels/cuda/detail/launch.h"
#include "kernels/layout.h"

namespace peakknn::kernels::cuda::detail {
namespace {

namespace wmma = nvcuda::wmma;

constexpr int kThreads = 128;  // 4 warps, each a 32 x 32 sub-tile
constexpr int kTileQueries = 64;
constexpr int kTileBins = 64;
constexpr int kTileDims = 32;
constexpr int kOperandPitch = kTileDims + 8;  // bf16 elements; 80 bytes
constexpr int kScorePitch = kTileBins + 4;    // floats; 272 bytes
constexpr int kQueriesPerThread = kTileQueries * kTileBins / kThreads;

__global__ void __launch_bounds__(kThreads)
    TensorCoreFoldKernel(DeviceQueries queries, DeviceRows rows,
                         DeviceBins bins, int64_t cycles_per_split) {
  __shared__ __align__(128) uint16_t a_tile[kTileQueries * kOperandPitch];
  __shared__ __align__(128) uint16_t b_tile[kTileBins * kOperandPitch];
  __shared__ __align__(128) float score_tile[kTileQueries * kScorePitch];

  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int64_t b0 = static_cast<int64_t>(blockIdx.x) * kTileBins;
  const int64_t q0 = static_cast<int64_t>(blockIdx.y) * kTileQueries;
  const int padded = PaddedDimBf16(rows.dim);
  const int64_t L = bins.bins;
  const uint32_t* query_words = reinterpret_cast<const uint32_t*>(queries.bf16);
  const uint32_t* panel_words = static_cast<const uint32_t*>(rows.panels);

  // Row of bin b0 + j in cycle c is cycle_row(c) + j for b0 + j < L. The
  // first row of bin b0 lies in [0, L); bins after it may wrap to the
  // previous cycle, hence the start one cycle earlier (rows < 0 masked).
  const int64_t base_row = FirstRowOfBin(b0, 0, rows.slot_base, L) - L;

  // This thread's bins: column `col`, query rows tid / 64 + 2 m.
  const int col = tid % kTileBins;
  const int row0 = tid / kTileBins;
  uint64_t best[kQueriesPerThread];
#pragma unroll
  for (int m = 0; m < kQueriesPerThread; ++m) best[m] = kEmptyFoldKey;

  const int64_t c_begin = blockIdx.z * cycles_per_split;
  for (int64_t c = c_begin; c < c_begin + cycles_per_split; ++c) {
    const int64_t first_row = base_row + c * L;
    if (first_row >= rows.rows) break;         // uniform across the block
    if (first_row + kTileBins <= 0) continue;  // uniform across the block

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
    }

    for (int k0 = 0; k0 < padded; k0 += kTileDims) {
      // 64 x 32 bf16 = 1024 words per operand, 8 per thread.
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const int w = tid + kThreads * i;
        // A: word w -> query w / 16, dims 2 (w % 16) and +1.
        const int qi = w / (kTileDims / 2);
        const int pair = w % (kTileDims / 2);
        const int d = k0 + 2 * pair;
        const int64_t q = q0 + qi;
        uint32_t a = 0;
        if (q < queries.count && d < padded) {
          a = query_words[(q * queries.stride + d) / 2];
        }
        *reinterpret_cast<uint32_t*>(&a_tile[qi * kOperandPitch + 2 * pair]) =
            a;
        // B: word w -> panel w / 256, pair (w / 16) % 16, lane w % 16, so a
        // warp reads 32 consecutive words of one panel.
        const int p = w / (kPanelRows * kTileDims / 2);
        const int bpair = (w / kPanelRows) % (kTileDims / 2);
        const int lane = w % kPanelRows;
        const int bd = k0 + 2 * bpair;
        const int64_t row = first_row + p * kPanelRows + lane;
        uint32_t b = 0;
        if (row >= 0 && row < rows.rows && bd < padded) {
          const int64_t panel = row / kPanelRows;
          b = panel_words[panel * kPanelRows * (padded / 2) +
                          (bd / 2) * kPanelRows + lane];
        }
        *reinterpret_cast<uint32_t*>(
            &b_tile[(p * kPanelRows + lane) * kOperandPitch + 2 * bpair]) = b;
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < kTileDims; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16,
                       wmma::row_major>
            a_frag[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16,
                       wmma::col_major>
            b_frag[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          const int qr = (warp / 2) * 32 + i * 16;
          wmma::load_matrix_sync(a_frag[i],
                                 reinterpret_cast<const __nv_bfloat16*>(
                                     &a_tile[qr * kOperandPitch + kk]),
                                 kOperandPitch);
          const int bc = (warp % 2) * 32 + i * 16;
          wmma::load_matrix_sync(b_frag[i],
                                 reinterpret_cast<const __nv_bfloat16*>(
                                     &b_tile[bc * kOperandPitch + kk]),
                                 kOperandPitch);
        }
#pragma unroll
        for (int i = 0; i < 2; ++i) {
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            wmma::mma_sync(acc[i][j], a_frag[i], b_frag[j], acc[i][j]);
          }
        }
      }
      __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int qr = (warp / 2) * 32 + i * 16;
        const int bc = (warp % 2) * 32 + j * 16;
        wmma::store_matrix_sync(&score_tile[qr * kScorePitch + bc], acc[i][j],
                                kScorePitch, wmma::mem_row_major);
      }
    }
    __syncthreads();

    const int64_t row = first_row + col;
    if (b0 + col < L && row >= 0 && row < rows.rows &&
        !IsDead(rows.dead, row)) {
      const float bias = rows.bias[row];
      const int64_t slot = rows.slot_base + row;
#pragma unroll
      for (int m = 0; m < kQueriesPerThread; ++m) {
        const int qi = row0 + 2 * m;
        FoldIntoBin(&best[m],
                    FoldKey(score_tile[qi * kScorePitch + col] + bias, slot));
      }
    }
    __syncthreads();  // score_tile is rewritten by the next cycle
  }

  if (b0 + col >= L) return;
#pragma unroll
  for (int m = 0; m < kQueriesPerThread; ++m) {
    const int64_t q = q0 + row0 + 2 * m;
    if (q < queries.count && best[m] != kEmptyFoldKey) {
      atomicMax(
          reinterpret_cast<unsigned long long*>(bins.keys + q * L + b0 + col),
          static_cast<unsigned long long>(best[m]));
    }
  }
}

}  // namespace

cudaError_t LaunchTensorCoreFold(const DeviceQueries& queries,
                                 const DeviceRows& rows, const DeviceBins& bins,
                                 int64_t target_threads, cudaStream_t stream) {
  if (queries.count == 0 || rows.rows == 0) return cudaSuccess;
  const int64_t bin_blocks = (bins.bins + kTileBins - 1) / kTileBins;
  const int64_t query_blocks =
      (queries.count + kTileQueries - 1) / kTileQueries;
  // One extra cycle: see base_row in the kernel.
  const int64_t cycles = (rows.rows + bins.bins - 1) / bins.bins + 1;
  const CycleSplit split =
      SplitCycles(cycles, bin_blocks * query_blocks * kThreads, target_threads);
  const dim3 grid(static_cast<unsigned>(bin_blocks),
                  static_cast<unsigned>(query_blocks),
                  static_cast<unsigned>(split.splits));
  TensorCoreFoldKernel<<<grid, kThreads, 0, stream>>>(queries, rows, bins,
                                                      split.cycles_per_split);
  return cudaGetLastError();
}

}  // namespace peakknn::kernels::cuda::detail
