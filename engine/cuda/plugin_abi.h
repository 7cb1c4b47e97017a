// The interface between a binary and the CUDA backend plugin
// (libpeakknn_cuda_plugin.so, engine/cuda/cuda_plugin.cc), which the binary
// loads with dlopen (engine/cuda/plugin_loader.h) instead of linking CUDA.
//
// The plugin exports one C symbol, kCudaPluginEntrySymbol, a function that
// returns a pointer to a static CudaPluginApi. Its first two fields are the
// stable prefix that every version keeps: the ABI version and the build
// facts. The function pointers after them pass C++ types (absl::Status,
// SearchBackend, Snapshot...) across the boundary, which is only sound when
// both sides were compiled from the same headers by the same compiler with
// the same sanitizers; the loader checks both prefix fields before it
// touches anything else and refuses a plugin that differs.
//
// Bump kCudaPluginAbiVersion (and the symbol's suffix) whenever CudaPluginApi
// or a type it passes changes in a way the size facts below cannot see.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/backend.h"
#include "engine/cuda/cuda_backend.h"

namespace peakknn {

// 2: SearchBackend lost Sync (Scan brings the device mirror up to date).
inline constexpr uint32_t kCudaPluginAbiVersion = 2;
inline constexpr char kCudaPluginEntrySymbol[] = "peakknn_cuda_plugin_v2";
inline constexpr char kCudaPluginFileName[] = "libpeakknn_cuda_plugin.so";

// Compiler, sanitizers and the sizes of the types that cross the boundary,
// e.g. "gcc 12.2.0; c++ 202002; sanitizers none; sizes 8 ...". Computed
// identically by the loader and the plugin; a difference means they were
// not built together.
inline std::string CudaPluginBuildFacts() {
#if defined(__SANITIZE_ADDRESS__)
  constexpr const char* kSanitizers = "address";
#elif defined(__SANITIZE_THREAD__) || defined(_GLIBCXX_TSAN)
  constexpr const char* kSanitizers = "thread";
#else
  constexpr const char* kSanitizers = "none";
#endif
  return absl::StrCat("gcc ", __VERSION__, "; c++ ", __cplusplus,
                      "; sanitizers ", kSanitizers, "; sizes ",
                      sizeof(absl::Status), " ", sizeof(Snapshot), " ",
                      sizeof(ScanPlan), " ", sizeof(ScanResult), " ",
                      sizeof(kernels::QueryTile), " ",
                      sizeof(CudaBackendOptions), " ", sizeof(CudaDeviceInfo));
}

struct CudaPluginApi {
  // Stable prefix (every ABI version): read first, by value.
  uint32_t abi_version;     // kCudaPluginAbiVersion of the plugin's build
  const char* build_facts;  // CudaPluginBuildFacts() of the plugin's build

  // Version 1: the functions of engine/cuda/cuda_backend.h.
  absl::Status (*available)(int device);
  absl::StatusOr<std::unique_ptr<SearchBackend>> (*make_backend)(
      const CudaBackendOptions& options);
  absl::StatusOr<CudaDeviceInfo> (*describe)(int device);
};

// The type of the exported entry point.
using CudaPluginEntry = const CudaPluginApi* (*)();

}  // namespace peakknn
