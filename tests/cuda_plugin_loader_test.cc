// engine/cuda/plugin_loader.h against stand-in plugins
// (tests/fake_cuda_plugin.cc), so the lookup, the ABI checks and the calls
// through the plugin are tested in every build, with or without CUDA. The
// real plugin is covered by tests/server_backend_test.cc.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/cuda/plugin_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace peakknn {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(CudaPluginLoaderTest, CallsThroughAGoodPlugin) {
  absl::StatusOr<CudaPlugin> plugin = CudaPlugin::Load(FAKE_PLUGIN_GOOD);
  ASSERT_TRUE(plugin.ok()) << plugin.status();
  EXPECT_EQ(plugin->path(), FAKE_PLUGIN_GOOD);
  EXPECT_EQ(plugin->Available(3).code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(plugin->Available(3)), HasSubstr("no device 3"));
  CudaBackendOptions options;
  options.device = 5;
  EXPECT_THAT(Message(plugin->MakeBackend(options).status()),
              HasSubstr("no device 5"));
  EXPECT_THAT(Message(plugin->Describe(1).status()), HasSubstr("no device 1"));
  // Loading twice is harmless (dlopen counts references).
  EXPECT_TRUE(CudaPlugin::Load(FAKE_PLUGIN_GOOD).ok());
}

TEST(CudaPluginLoaderTest, RefusesAnotherAbiVersion) {
  absl::StatusOr<CudaPlugin> plugin = CudaPlugin::Load(FAKE_PLUGIN_ABI);
  EXPECT_EQ(plugin.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      Message(plugin.status()),
      HasSubstr(absl::StrCat("ABI version ", kCudaPluginAbiVersion + 1,
                             ", this binary needs ", kCudaPluginAbiVersion)));
}

TEST(CudaPluginLoaderTest, RefusesAnotherBuild) {
  absl::StatusOr<CudaPlugin> plugin = CudaPlugin::Load(FAKE_PLUGIN_FACTS);
  EXPECT_EQ(plugin.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(plugin.status()),
              HasSubstr("built as \"another compiler\", this binary as \"" +
                        CudaPluginBuildFacts() + "\""));
}

TEST(CudaPluginLoaderTest, RefusesALibraryWithoutTheEntryPoint) {
  absl::StatusOr<CudaPlugin> plugin = CudaPlugin::Load(FAKE_PLUGIN_NO_ENTRY);
  EXPECT_EQ(plugin.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(plugin.status()),
              HasSubstr(std::string(FAKE_PLUGIN_NO_ENTRY) +
                        ": not a peakknn CUDA plugin (no symbol "
                        "peakknn_cuda_plugin_v2"));
}

TEST(CudaPluginLoaderTest, NamesMissingAndUnloadableFiles) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("cuda_plugin_loader_test." + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string missing = (dir / "missing.so").string();
  absl::StatusOr<CudaPlugin> none = CudaPlugin::Load(missing);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(none.status()),
              HasSubstr("CUDA plugin " + missing + ": no such file"));

  const std::string text = (dir / "text.so").string();
  std::ofstream(text) << "not a shared library\n";
  absl::StatusOr<CudaPlugin> bad = CudaPlugin::Load(text);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(bad.status()),
              HasSubstr("CUDA plugin " + text + ": cannot load: "));
  std::filesystem::remove_all(dir);
}

TEST(CudaPluginLoaderTest, DefaultLookupIsBesideTheExecutableThenLib) {
  const std::filesystem::path exe =
      std::filesystem::read_symlink("/proc/self/exe");
  EXPECT_THAT(
      DefaultCudaPluginPaths(),
      ::testing::ElementsAre(
          (exe.parent_path() / kCudaPluginFileName).string(),
          (exe.parent_path().parent_path() / "lib" / kCudaPluginFileName)
              .string()));
}

}  // namespace
}  // namespace peakknn
