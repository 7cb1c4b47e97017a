// Loads the CUDA backend plugin (libpeakknn_cuda_plugin.so, see
// engine/cuda/plugin_abi.h) with dlopen, so that a binary can offer the CUDA
// backend without linking CUDA: it starts and runs on machines without a
// GPU, the NVIDIA driver, the CUDA libraries or the plugin itself.
//
// Why a plugin and not a link (peakknn-server): Debian's libcivetweb (the
// HTTP server under prometheus-cpp's /metrics) starts its threads with a
// fixed 100 KiB stack (built with USE_STACK_SIZE=102400), and glibc carves
// the static TLS of every library loaded at program start out of each
// thread's stack. libcublasLt.so.13 alone has 92 KiB of TLS, so with cuBLAS
// linked (or LD_PRELOADed) pthread_create fails with EINVAL and civetweb
// cannot start ("Cannot create first worker thread", then prometheus-cpp's
// "null context when constructing CivetServer"). A library loaded by dlopen
// gets dynamic TLS instead, allocated on first use and outside thread
// stacks, so the plugin can be loaded before or after /metrics starts.
//
// Lookup when no path is given: the directory of the running executable
// (/proc/self/exe), then ../lib beside it (the build tree puts the plugin
// in <build>/lib, the binaries in <build>/<dir>).
//
// The library stays loaded until the process exits (backends it made hold
// code and CUDA state in it). Thread-safe after Load.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/plugin_abi.h"

namespace peakknn {

class CudaPlugin {
 public:
  // Loads `path`, or with "" the first of DefaultCudaPluginPaths() that
  // exists. NOT_FOUND when there is no plugin file (naming where it looked,
  // and that this build has no CUDA when that is why); FAILED_PRECONDITION
  // when the file cannot be loaded (dlerror: missing libcublas, not a shared
  // library, ...), lacks the entry point or was built differently (ABI
  // version or build facts, both named).
  static absl::StatusOr<CudaPlugin> Load(const std::string& path = "");

  const std::string& path() const { return path_; }

  // engine/cuda/cuda_backend.h's functions, run inside the plugin.
  absl::Status Available(int device = 0) const;
  absl::StatusOr<std::unique_ptr<SearchBackend>> MakeBackend(
      const CudaBackendOptions& options = {}) const;
  absl::StatusOr<CudaDeviceInfo> Describe(int device = 0) const;

 private:
  CudaPlugin(std::string path, const CudaPluginApi* api)
      : path_(std::move(path)), api_(api) {}

  std::string path_;
  const CudaPluginApi* api_;  // static inside the loaded plugin
};

// Where Load("") looks, in order.
std::vector<std::string> DefaultCudaPluginPaths();

}  // namespace peakknn
