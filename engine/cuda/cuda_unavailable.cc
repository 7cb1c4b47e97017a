// engine/cuda/cuda_backend.h for builds without nvcc: the backend does not
// exist, and every entry point says so instead of failing to link.
#include "engine/cuda/cuda_backend.h"

namespace peakknn {
namespace {

absl::Status NotBuilt() {
  return absl::UnavailableError(
      "this peakknn was built without CUDA support (nvcc was not found at "
      "configure time, or -DPEAKKNN_CUDA=OFF)");
}

}  // namespace

absl::Status CudaAvailable(int /*device*/) { return NotBuilt(); }

absl::StatusOr<std::unique_ptr<SearchBackend>> MakeCudaBackend(
    const CudaBackendOptions& /*options*/) {
  return NotBuilt();
}

absl::StatusOr<CudaDeviceInfo> DescribeCudaDevice(int /*device*/) {
  return NotBuilt();
}

}  // namespace peakknn
