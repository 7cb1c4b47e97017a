// Owning handles for device memory, pinned host memory, streams and cuBLAS
// handles. Allocation failures come back as RESOURCE_EXHAUSTED naming the
// size asked for and what the device had free.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace peakknn::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { Reset(); }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        bytes_(std::exchange(other.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      Reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }

  // `what` names the buffer in errors ("rows of block at slot 65536").
  static absl::StatusOr<DeviceBuffer> Allocate(int64_t bytes,
                                               absl::string_view what);
  // Grows (never shrinks) to at least `bytes`; contents are not kept.
  absl::Status Reserve(int64_t bytes, absl::string_view what);

  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  int64_t bytes() const { return bytes_; }

 private:
  void Reset();
  void* data_ = nullptr;
  int64_t bytes_ = 0;
};

// Page-locked host memory: the only kind cudaMemcpyAsync copies without
// blocking the host.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { Reset(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  absl::Status Reserve(int64_t bytes, absl::string_view what);
  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  int64_t bytes() const { return bytes_; }

 private:
  void Reset();
  void* data_ = nullptr;
  int64_t bytes_ = 0;
};

class Stream {
 public:
  Stream() = default;
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  absl::Status Create();
  cudaStream_t get() const { return stream_; }
  absl::Status Synchronize(absl::string_view what) const;

 private:
  cudaStream_t stream_ = nullptr;
};

class CublasHandle {
 public:
  CublasHandle() = default;
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;

  absl::Status Create(cudaStream_t stream);
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

}  // namespace peakknn::cuda
