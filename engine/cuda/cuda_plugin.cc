// libpeakknn_cuda_plugin.so: the CUDA backend (engine/cuda/cuda_backend.h) as a
// plugin that binaries load with dlopen (engine/cuda/plugin_loader.h), so
// that they neither link CUDA nor need it installed. Exports only
// kCudaPluginEntrySymbol (cuda_plugin.map); everything else, the engine
// code it carries included, stays private to the plugin.
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/plugin_abi.h"

extern "C" __attribute__((visibility("default"))) const peakknn::CudaPluginApi*
peakknn_cuda_plugin_v2() {
  // Built on first call, then constant: the loader may keep the pointer.
  static const std::string* const facts =
      new std::string(peakknn::CudaPluginBuildFacts());
  static const peakknn::CudaPluginApi api = {
      .abi_version = peakknn::kCudaPluginAbiVersion,
      .build_facts = facts->c_str(),
      .available = &peakknn::CudaAvailable,
      .make_backend = &peakknn::MakeCudaBackend,
      .describe = &peakknn::DescribeCudaDevice,
  };
  return &api;
}
