#include "kernels/cuda/device_scan.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/bin_fold.h"
#include "kernels/cuda/detail/launch.h"
#include "kernels/layout.h"

namespace peakknn::kernels::cuda {
namespace {

constexpr int64_t kAlign = 256;

int PaddedDim(int dim, RowType type) {
  return type == RowType::kF32 ? PaddedDimF32(dim) : PaddedDimBf16(dim);
}

int64_t ElementBytes(RowType type) { return type == RowType::kF32 ? 4 : 2; }

int64_t AlignUp(int64_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

absl::Status CheckScan(ScanPath path, const DeviceQueries& queries,
                       const DeviceRows& rows, const DeviceBins& bins) {
  if (bins.bins < kPanelRows || bins.bins % kPanelRows != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bins must be a positive multiple of ", kPanelRows,
                     ", got ", bins.bins));
  }
  if (rows.slot_base % kPanelRows != 0 || rows.slot_base < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("slot_base must be a non-negative multiple of ",
                     kPanelRows, ", got ", rows.slot_base));
  }
  if (rows.slot_base + rows.rows - 1 > kMaxFoldSlot) {
    return absl::OutOfRangeError(absl::StrCat(
        "the CUDA backend supports slots up to ", kMaxFoldSlot,
        "; this block reaches slot ", rows.slot_base + rows.rows - 1));
  }
  const bool f32 = rows.type == RowType::kF32;
  if ((f32 && queries.f32 == nullptr) || (!f32 && queries.bf16 == nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("queries must be ", f32 ? "f32" : "bf16", " for ",
                     f32 ? "f32" : "bf16", " rows"));
  }
  if (queries.stride < PaddedDim(rows.dim, rows.type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query stride ", queries.stride, " is below the padded dim ",
        PaddedDim(rows.dim, rows.type)));
  }
  if (path == ScanPath::kTensorCore && f32) {
    return absl::InvalidArgumentError(
        "the tensor-core path needs bf16 rows; f32 rows use kFmaChain "
        "(bit-exact) or kGemm");
  }
  return absl::OkStatus();
}

absl::Status GemmPartialReduce(const DeviceQueries& queries,
                               const DeviceRows& rows, const DeviceBins& bins,
                               const ScanContext& context) {
  const int padded = PaddedDim(rows.dim, rows.type);
  const int64_t row_bytes = padded * ElementBytes(rows.type);
  const int64_t per_row = row_bytes + queries.count * 4;
  // Reserve alignment slack for the score tile that follows the rows.
  int64_t tile = (context.gemm_workspace_bytes - kAlign) / per_row;
  tile = tile / kPanelRows * kPanelRows;
  if (tile < kPanelRows || context.gemm_workspace == nullptr ||
      context.cublas == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the GEMM path needs a cuBLAS handle and a workspace of at least ",
        GemmWorkspaceBytes(queries.count, rows.dim, rows.type, kPanelRows),
        " bytes for ", queries.count, " queries of dim ", rows.dim, "; got ",
        context.gemm_workspace_bytes));
  }
  const int64_t rows_rounded =
      (rows.rows + kPanelRows - 1) / kPanelRows * kPanelRows;
  if (tile > rows_rounded) tile = rows_rounded;
  void* tile_rows = context.gemm_workspace;
  float* scores = reinterpret_cast<float*>(
      static_cast<char*>(context.gemm_workspace) + AlignUp(tile * row_bytes));

  absl::Status status = CublasStatus(
      cublasSetStream(context.cublas, context.stream), "cublasSetStream");
  if (!status.ok()) return status;
  const bool f32 = rows.type == RowType::kF32;
  const cudaDataType_t input_type = f32 ? CUDA_R_32F : CUDA_R_16BF;
  const void* query_data = f32 ? static_cast<const void*>(queries.f32)
                               : static_cast<const void*>(queries.bf16);
  const float one = 1.0f;
  const float zero = 0.0f;
  for (int64_t begin = 0; begin < rows.rows; begin += tile) {
    const int64_t count = rows.rows - begin < tile ? rows.rows - begin : tile;
    status = CudaStatus(
        detail::LaunchRepackRows(rows, begin, count, tile_rows, context.stream),
        "repacking rows for the GEMM");
    if (!status.ok()) return status;
    // Column-major view: scores (count x queries, ld count) =
    // tile_rows^T (count x padded) * queries (padded x queries, ld stride).
    status = CublasStatus(
        cublasGemmEx(context.cublas, CUBLAS_OP_T, CUBLAS_OP_N,
                     static_cast<int>(count), static_cast<int>(queries.count),
                     padded, &one, tile_rows, input_type, padded, query_data,
                     input_type, static_cast<int>(queries.stride), &zero,
                     scores, CUDA_R_32F, static_cast<int>(count),
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx (score tile)");
    if (!status.ok()) return status;
    status = CudaStatus(
        detail::LaunchReduceScoreTile(scores, queries.count, rows, begin, count,
                                      bins, context.stream),
        "PartialReduce of the score tile");
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view ScanPathName(ScanPath path) {
  switch (path) {
    case ScanPath::kFmaChain:
      return "fma-chain";
    case ScanPath::kTensorCore:
      return "tensor-core";
    case ScanPath::kGemm:
      return "gemm";
  }
  return "unknown";
}

absl::Status CudaStatus(cudaError_t error, absl::string_view what) {
  if (error == cudaSuccess) return absl::OkStatus();
  const std::string message =
      absl::StrCat(what, ": ", cudaGetErrorString(error), " (",
                   cudaGetErrorName(error), ")");
  if (error == cudaErrorMemoryAllocation) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InternalError(message);
}

absl::Status CublasStatus(cublasStatus_t status, absl::string_view what) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  const std::string message =
      absl::StrCat(what, ": ", cublasGetStatusString(status), " (",
                   cublasGetStatusName(status), ")");
  if (status == CUBLAS_STATUS_ALLOC_FAILED) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InternalError(message);
}

absl::Status ResetBins(const DeviceBins& bins, int64_t queries,
                       cudaStream_t stream) {
  static_assert(kEmptyFoldKey == 0, "zeroed memory must be empty bins");
  return CudaStatus(
      cudaMemsetAsync(
          bins.keys, 0,
          static_cast<size_t>(queries * bins.bins) * sizeof(uint64_t), stream),
      "clearing the bins");
}

absl::Status PartialReduce(ScanPath path, const DeviceQueries& queries,
                           const DeviceRows& rows, const DeviceBins& bins,
                           const ScanContext& context) {
  if (absl::Status s = CheckScan(path, queries, rows, bins); !s.ok()) return s;
  if (queries.count == 0 || rows.rows == 0) return absl::OkStatus();
  switch (path) {
    case ScanPath::kFmaChain:
      return CudaStatus(
          detail::LaunchFmaChainFold(queries, rows, bins,
                                     context.target_threads, context.stream),
          "fused FMA-chain scan");
    case ScanPath::kTensorCore:
      return CudaStatus(
          detail::LaunchTensorCoreFold(queries, rows, bins,
                                       context.target_threads, context.stream),
          "fused tensor-core scan");
    case ScanPath::kGemm:
      return GemmPartialReduce(queries, rows, bins, context);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown scan path ", static_cast<int>(path)));
}

int64_t GemmWorkspaceBytes(int64_t queries, int dim, RowType type,
                           int64_t tile_rows) {
  return AlignUp(tile_rows * PaddedDim(dim, type) * ElementBytes(type)) +
         tile_rows * queries * 4 + kAlign;
}

absl::StatusOr<size_t> SortBinsTempBytes(int64_t queries, int64_t bins) {
  size_t bytes = 0;
  const DeviceBins view{nullptr, bins};
  const absl::Status status =
      CudaStatus(detail::LaunchSortBins(view, queries, nullptr, nullptr,
                                        nullptr, &bytes, nullptr),
                 "sizing the bin sort");
  if (!status.ok()) return status;
  return bytes;
}

absl::Status SortBins(const DeviceBins& bins, int64_t queries, int64_t* offsets,
                      uint64_t* sorted, void* temp, size_t temp_bytes,
                      cudaStream_t stream) {
  if (queries == 0) return absl::OkStatus();
  return CudaStatus(detail::LaunchSortBins(bins, queries, offsets, sorted, temp,
                                           &temp_bytes, stream),
                    "sorting the bins (second stage)");
}

}  // namespace peakknn::kernels::cuda
