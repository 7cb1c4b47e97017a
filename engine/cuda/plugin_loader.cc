#include "engine/cuda/plugin_loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace peakknn {
namespace {

// PEAKKNN_HAVE_CUDA is defined (engine/CMakeLists.txt) when this build made
// the plugin; otherwise a missing plugin is expected and the error says so.
#if defined(PEAKKNN_HAVE_CUDA)
constexpr const char* kWhyMissing = "";
#else
constexpr const char* kWhyMissing =
    "; this peakknn was built without CUDA support (nvcc was not found at "
    "configure time, or -DPEAKKNN_CUDA=OFF), so no plugin was built";
#endif

std::string DlError() {
  const char* e = dlerror();
  return e != nullptr ? std::string(e) : std::string("unknown dlopen error");
}

}  // namespace

std::vector<std::string> DefaultCudaPluginPaths() {
  std::error_code ec;
  const std::filesystem::path exe =
      std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  const std::filesystem::path dir = exe.parent_path();
  return {(dir / kCudaPluginFileName).string(),
          (dir.parent_path() / "lib" / kCudaPluginFileName).string()};
}

absl::StatusOr<CudaPlugin> CudaPlugin::Load(const std::string& path) {
  std::string chosen = path;
  if (chosen.empty()) {
    const std::vector<std::string> candidates = DefaultCudaPluginPaths();
    for (const std::string& candidate : candidates) {
      if (access(candidate.c_str(), F_OK) == 0) {
        chosen = candidate;
        break;
      }
    }
    if (chosen.empty()) {
      return absl::NotFoundError(absl::StrCat(
          "CUDA plugin ", kCudaPluginFileName, " not found (looked in ",
          candidates.empty() ? std::string("nothing: /proc/self/exe unreadable")
                             : absl::StrJoin(candidates, ", "),
          "; --cuda_plugin or PEAKKNN_CUDA_PLUGIN name another path)",
          kWhyMissing));
    }
  } else if (access(chosen.c_str(), F_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("CUDA plugin ", chosen, ": no such file", kWhyMissing));
  }

  // RTLD_LOCAL: the plugin's own symbols never interpose on this binary's.
  void* handle = dlopen(chosen.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("CUDA plugin ", chosen, ": cannot load: ", DlError()));
  }
  // From here on the library stays loaded (see the header).
  void* symbol = dlsym(handle, kCudaPluginEntrySymbol);
  if (symbol == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CUDA plugin ", chosen, ": not a peakknn CUDA plugin (no symbol ",
        kCudaPluginEntrySymbol, ": ", DlError(), ")"));
  }
  const CudaPluginApi* api = reinterpret_cast<CudaPluginEntry>(symbol)();
  if (api == nullptr || api->abi_version != kCudaPluginAbiVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CUDA plugin ", chosen, ": ABI version ",
        api == nullptr ? std::string("none") : absl::StrCat(api->abi_version),
        ", this binary needs ", kCudaPluginAbiVersion,
        " (use the plugin built with this binary)"));
  }
  const std::string facts = CudaPluginBuildFacts();
  if (api->build_facts == nullptr ||
      std::string_view(api->build_facts) != facts) {
    return absl::FailedPreconditionError(
        absl::StrCat("CUDA plugin ", chosen, ": built as \"",
                     api->build_facts == nullptr ? "?" : api->build_facts,
                     "\", this binary as \"", facts,
                     "\" (use the plugin built with this binary)"));
  }
  return CudaPlugin(std::move(chosen), api);
}

absl::Status CudaPlugin::Available(int device) const {
  return api_->available(device);
}

absl::StatusOr<std::unique_ptr<SearchBackend>> CudaPlugin::MakeBackend(
    const CudaBackendOptions& options) const {
  return api_->make_backend(options);
}

absl::StatusOr<CudaDeviceInfo> CudaPlugin::Describe(int device) const {
  return api_->describe(device);
}

}  // namespace peakknn
