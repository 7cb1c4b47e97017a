// The CUDA search backend: factory, availability check and device facts.
//
// This header has no CUDA dependency; it is always safe to include. In a
// build without nvcc (PEAKKNN_HAVE_CUDA off) every function here reports
// that CUDA support was not built. With CUDA built, the runtime is linked
// statically, so binaries start on machines without the NVIDIA driver and
// these functions return an error naming the CUDA failure ("no CUDA-capable
// device is detected", "CUDA driver version is insufficient", ...).
//
// Who links it: peakknn-bench and tests/cuda_backend_test link
// peakknn_cuda_backend (and so cuBLAS) directly. peakknn-server must not
// (cuBLAS's static TLS breaks civetweb's /metrics threads; see
// engine/cuda/plugin_loader.h): it reaches these functions through
// libpeakknn_cuda_plugin.so (engine/cuda/cuda_plugin.cc), loaded with dlopen.
//
// What the backend does (engine/cuda/cuda_backend.cc):
//   storage  each RowBlock of every collection is mirrored in device memory
//            in the same panel layout (f32 or bf16) with its bias and its
//            tombstone bitmap, allocated at the block's full capacity (large
//            chunks) and filled incrementally from pinned staging buffers on
//            a dedicated upload stream (engine/cuda/device_mirror.h).
//   search   per query chunk: upload (pinned) -> fold into L bins on the
//            device (kernels/cuda/device_scan.h) -> sort each query's bins
//            on the device -> copy back only k keys per query. Chunks
//            alternate between two streams so one chunk's upload and
//            readback overlap the other's compute; `contexts` batches run
//            concurrently on their own streams.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/backend.h"

namespace peakknn {

// Which device kernels fold scores into bins (see kernels/cuda/device_scan.h).
enum class CudaScanPath : int32_t {
  kAuto = 0,        // tensor cores for bf16 rows, the FMA chain for f32
  kFmaChain = 1,    // bit-identical to the CPU backend (f32 and bf16)
  kTensorCore = 2,  // fused wmma kernel; bf16 rows only
  kGemm = 3,        // reference: cuBLAS GEMM into a workspace + reduction
};

// "auto" | "fma" | "tensor" | "gemm".
absl::StatusOr<CudaScanPath> ParseCudaScanPath(absl::string_view text);

struct CudaBackendOptions {
  int device = 0;
  CudaScanPath path = CudaScanPath::kAuto;
  // Batches that may run at once, each with its own pair of streams and
  // workspaces.
  int contexts = 2;
  // Most queries per device chunk.
  int64_t max_query_chunk = 4096;
  // Device workspace per stream for bins, their sorted copy and (kGemm) the
  // score tile; bounds the query chunk when L is large (exact search).
  int64_t workspace_bytes = int64_t{512} << 20;
  // Device memory the row mirrors may use; 0: what is free at start-up minus
  // the workspaces and a 5% reserve.
  int64_t mirror_limit_bytes = 0;
  // Pinned host staging for row uploads.
  int64_t staging_bytes = int64_t{64} << 20;
};

// OkStatus when a CUDA device can be used; otherwise the reason, for the
// `--backend=auto` log line ("using the CPU backend: <message>").
absl::Status CudaAvailable(int device = 0);

absl::StatusOr<std::unique_ptr<SearchBackend>> MakeCudaBackend(
    const CudaBackendOptions& options = {});

// Facts for benchmarks: achieved FLOP/s = 2 * queries * rows * dim / time,
// reported as a fraction of the peak for the row type.
struct CudaDeviceInfo {
  std::string name;
  int compute_capability = 0;  // major * 10 + minor
  int multiprocessors = 0;
  int64_t clock_khz = 0;  // peak SM clock
  int64_t memory_bytes = 0;
  // Dense peaks from the SM count and clock: tensor-core bf16 (f32
  // accumulate) and CUDA-core f32 FMA. Per SM per clock: sm_80 1024 bf16
  // FMAs / 64 f32 FMAs; sm_90 2048 / 128; other architectures report 0
  // (unknown) rather than guess.
  double peak_bf16_tflops = 0;
  double peak_f32_tflops = 0;
};

absl::StatusOr<CudaDeviceInfo> DescribeCudaDevice(int device = 0);

}  // namespace peakknn
