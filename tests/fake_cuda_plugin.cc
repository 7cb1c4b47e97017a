// Stand-ins for libpeakknn_cuda_plugin.so, built without CUDA in every
// build, for tests/cuda_plugin_loader_test.cc. One source, four modules
// (tests/CMakeLists.txt), selected by FAKE_PLUGIN_KIND:
//   1  a good plugin whose device is never usable ("fake: no device")
//   2  the entry point reports another ABI version
//   3  the right ABI version with other build facts
//   4  no entry point at all
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "engine/cuda/plugin_abi.h"

#if FAKE_PLUGIN_KIND != 4
namespace {

absl::Status NoDevice(int device) {
  return absl::UnavailableError(
      absl::StrCat("fake: no device ", device, " in this plugin"));
}

absl::StatusOr<std::unique_ptr<peakknn::SearchBackend>> NoBackend(
    const peakknn::CudaBackendOptions& options) {
  return NoDevice(options.device);
}

absl::StatusOr<peakknn::CudaDeviceInfo> NoInfo(int device) {
  return NoDevice(device);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const peakknn::CudaPluginApi*
peakknn_cuda_plugin_v2() {
  static const std::string* const facts =
      new std::string(FAKE_PLUGIN_KIND == 3 ? std::string("another compiler")
                                            : peakknn::CudaPluginBuildFacts());
  static const peakknn::CudaPluginApi api = {
      .abi_version = FAKE_PLUGIN_KIND == 2 ? peakknn::kCudaPluginAbiVersion + 1
                                           : peakknn::kCudaPluginAbiVersion,
      .build_facts = facts->c_str(),
      .available = &NoDevice,
      .make_backend = &NoBackend,
      .describe = &NoInfo,
  };
  return &api;
}
#else
// A shared library, but not a plugin.
extern "C" __attribute__((visibility("default"))) int peakknn_not_a_plugin() {
  return 0;
}
#endif
