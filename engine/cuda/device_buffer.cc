#include "engine/cuda/device_buffer.h"

#include "absl/strings/str_cat.h"
#include "kernels/cuda/device_scan.h"

namespace peakknn::cuda {
namespace {

using kernels::cuda::CublasStatus;
using kernels::cuda::CudaStatus;

absl::Status OutOfDeviceMemory(int64_t bytes, absl::string_view what,
                               cudaError_t error) {
  size_t free_bytes = 0;
  size_t total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);
  return absl::ResourceExhaustedError(
      absl::StrCat("cannot allocate ", bytes, " bytes of device memory for ",
                   what, ": the device has ", free_bytes, " of ", total_bytes,
                   " bytes free (", cudaGetErrorString(error), ")"));
}

}  // namespace

absl::StatusOr<DeviceBuffer> DeviceBuffer::Allocate(int64_t bytes,
                                                    absl::string_view what) {
  DeviceBuffer buffer;
  if (absl::Status s = buffer.Reserve(bytes, what); !s.ok()) return s;
  return buffer;
}

absl::Status DeviceBuffer::Reserve(int64_t bytes, absl::string_view what) {
  if (bytes <= bytes_) return absl::OkStatus();
  Reset();
  const cudaError_t error = cudaMalloc(&data_, static_cast<size_t>(bytes));
  if (error != cudaSuccess) {
    data_ = nullptr;
    cudaGetLastError();  // not sticky: keep later launch checks clean
    return OutOfDeviceMemory(bytes, what, error);
  }
  bytes_ = bytes;
  return absl::OkStatus();
}

void DeviceBuffer::Reset() {
  if (data_ != nullptr) cudaFree(data_);
  data_ = nullptr;
  bytes_ = 0;
}

absl::Status PinnedBuffer::Reserve(int64_t bytes, absl::string_view what) {
  if (bytes <= bytes_) return absl::OkStatus();
  Reset();
  const cudaError_t error = cudaMallocHost(&data_, static_cast<size_t>(bytes));
  if (error != cudaSuccess) {
    data_ = nullptr;
    cudaGetLastError();
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot allocate ", bytes, " bytes of pinned host memory for ", what,
        ": ", cudaGetErrorString(error)));
  }
  bytes_ = bytes;
  return absl::OkStatus();
}

void PinnedBuffer::Reset() {
  if (data_ != nullptr) cudaFreeHost(data_);
  data_ = nullptr;
  bytes_ = 0;
}

Stream::~Stream() {
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

absl::Status Stream::Create() {
  return CudaStatus(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
                    "cudaStreamCreateWithFlags");
}

absl::Status Stream::Synchronize(absl::string_view what) const {
  return CudaStatus(cudaStreamSynchronize(stream_), what);
}

CublasHandle::~CublasHandle() {
  if (handle_ != nullptr) cublasDestroy(handle_);
}

absl::Status CublasHandle::Create(cudaStream_t stream) {
  if (absl::Status s = CublasStatus(cublasCreate(&handle_), "cublasCreate");
      !s.ok()) {
    return s;
  }
  return CublasStatus(cublasSetStream(handle_, stream), "cublasSetStream");
}

}  // namespace peakknn::cuda
