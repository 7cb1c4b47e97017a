// CUDA scan kernels, public API: the device counterpart of kernels/scan.h.
//
// Three ways to fold a query tile x one block's rows into per-query bins
// (fold keys, kernels/bin_fold.h), all with the CPU's semantics: bin =
// slot mod L, ties to the lower slot, tombstones never fold, bias added.
//
//   kFmaChain   fused; CUDA cores; scores bit-identical to the CPU scalar
//               kernel (kernels/panel_dot.h), so bin winners and top-k are
//               identical to the CPU backend's. f32 and bf16 rows.
//   kTensorCore fused; wmma bf16 x bf16 -> f32 on tensor cores, bins folded
//               in the epilogue. bf16 rows only. Equal to the CPU up to
//               rounding of the summation order (near-ties may differ).
//   kGemm       reference; cuBLAS GEMM of the query tile against a repacked
//               row tile into a workspace (f32: FP32 compute, no TF32;
//               bf16: bf16 inputs, f32 accumulate), then a PartialReduce
//               kernel. Within rounding of the CPU (cuBLAS picks its own
//               summation order).
//
// Every function only enqueues work on a stream; nothing here synchronises,
// allocates or owns memory. Pointers in the Device* views are device
// pointers. Errors name the CUDA / cuBLAS error and what was being done.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/cuda/device_types.h"

namespace peakknn::kernels::cuda {

enum class ScanPath : int32_t { kFmaChain = 0, kTensorCore = 1, kGemm = 2 };

absl::string_view ScanPathName(ScanPath path);

// absl error for a failed CUDA runtime call: "<what>: <error string>
// (<error name>)"; OkStatus for cudaSuccess.
absl::Status CudaStatus(cudaError_t error, absl::string_view what);
absl::Status CublasStatus(cublasStatus_t status, absl::string_view what);

// What one scan may use besides its inputs. Owned by the caller, one per
// stream (a scan may write the whole workspace).
struct ScanContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;  // kGemm only
  void* gemm_workspace = nullptr;   // kGemm only; 256-byte aligned
  int64_t gemm_workspace_bytes = 0;
  // Threads the device runs at once (SMs x max threads per SM): the fused
  // kernels split a block's bin cycles across thread blocks to reach it.
  int64_t target_threads = 1 << 18;
};

// Empties `queries` rows of bins.
absl::Status ResetBins(const DeviceBins& bins, int64_t queries,
                       cudaStream_t stream);

// Folds queries x rows into bins[0 .. queries.count). Checks: bins a
// positive multiple of kPanelRows, slot_base a multiple of kPanelRows, slots
// within kMaxFoldSlot, query type matching the rows, kTensorCore only for
// bf16 rows, kGemm with a workspace of at least GemmWorkspaceBytes(.., 16).
absl::Status PartialReduce(ScanPath path, const DeviceQueries& queries,
                           const DeviceRows& rows, const DeviceBins& bins,
                           const ScanContext& context);

// Workspace kGemm needs to process `tile_rows` rows per GEMM.
int64_t GemmWorkspaceBytes(int64_t queries, int dim, RowType type,
                           int64_t tile_rows);

// Second stage. sorted[q][0 ..) = bins of query q, best first (empty bins,
// key 0, last). Scratch: `offsets` has queries + 1 int64; `temp` has
// SortBinsTempBytes(queries, bins) bytes.
absl::StatusOr<size_t> SortBinsTempBytes(int64_t queries, int64_t bins);
absl::Status SortBins(const DeviceBins& bins, int64_t queries, int64_t* offsets,
                      uint64_t* sorted, void* temp, size_t temp_bytes,
                      cudaStream_t stream);

}  // namespace peakknn::kernels::cuda
