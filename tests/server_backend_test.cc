// --backend=auto|cpu|cuda of the real peakknn-server, which loads the CUDA
// backend as a plugin (engine/cuda/plugin_loader.h). What the server must do
// depends on the machine, so the test asks the same plugin in-process first:
// where CUDA runs, auto and cuda must search on it with the CPU's results;
// elsewhere auto serves on the CPU saying why and cuda exits naming why.
// Where nvcc built the plugin, it is loaded even without a GPU, so these
// tests also scrape /metrics with cuBLAS in the process (civetweb failed to
// start when cuBLAS was linked; see the loader's header).
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "engine/cuda/plugin_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"

namespace peakknn {
namespace {

using peakknn::testing::ServerProcess;
using ::testing::HasSubstr;

constexpr int kDim = 16;
constexpr int64_t kRows = 3000;
constexpr int64_t kQueries = 8;
constexpr int64_t kK = 10;

// What the server should choose here: "cuda" when the plugin built with it
// loads and finds a usable device, else "cpu" and the reason it will log.
struct Expected {
  std::string backend;
  std::string reason;  // empty for cuda
  bool plugin_loads = false;
};

Expected ExpectedHere() {
#if defined(PEAKKNN_CUDA_PLUGIN_PATH)
  absl::StatusOr<CudaPlugin> plugin =
      CudaPlugin::Load(PEAKKNN_CUDA_PLUGIN_PATH);
  if (!plugin.ok()) return {"cpu", std::string(plugin.status().message())};
  absl::Status available = plugin->Available();
  if (!available.ok()) return {"cpu", std::string(available.message()), true};
  return {"cuda", "", true};
#else
  // No plugin was built: the server looks beside itself and finds none.
  return {"cpu", absl::StrCat("CUDA plugin ", kCudaPluginFileName,
                              " not found (looked in ")};
#endif
}

// One server's answers to the same searches over the same rows.
struct Observed {
  std::vector<std::vector<uint64_t>> ids;  // per query, best first
  std::string stats_backend;               // GetStats().backend
  uint64_t device_memory_bytes = 0;  // GetStats().backend_device_memory_bytes
  std::string metrics;               // /metrics body
  std::string log;
};

absl::StatusOr<Observed> SearchOn(const std::vector<std::string>& flags,
                                  const std::vector<std::string>& env = {}) {
  std::vector<std::string> all = {"--drain_seconds=1"};
  all.insert(all.end(), flags.begin(), flags.end());
  absl::StatusOr<ServerProcess> server = ServerProcess::Start(all, env);
  if (!server.ok()) return server.status();
  client::ClientOptions options;
  options.target = server->target();
  absl::StatusOr<std::unique_ptr<client::Client>> c =
      client::Client::Connect(options);
  if (!c.ok()) return c.status();
  v1::CollectionSchema schema;
  schema.set_name("b");
  schema.set_dim(kDim);
  schema.set_metric(v1::METRIC_L2);
  if (auto s = (*c)->CreateCollection(schema); !s.ok()) return s.status();
  const std::vector<float> rows =
      peakknn::testing::RandomVectors(kRows, kDim, 7);
  std::vector<uint64_t> ids(kRows);
  std::iota(ids.begin(), ids.end(), 0);
  if (auto s = (*c)->InsertAll("b", ids, rows); !s.ok()) return s.status();
  const std::vector<float> queries =
      peakknn::testing::RandomVectors(kQueries, kDim, 8);
  // The collection's default recall target: an approximate (binned) search,
  // whose ids both backends must agree on (engine/backend.h).
  absl::StatusOr<client::SearchAllResult> found =
      (*c)->SearchAll("b", queries, kDim, kK);
  if (!found.ok()) return found.status();
  absl::StatusOr<v1::GetStatsResponse> stats = (*c)->GetStats();
  if (!stats.ok()) return stats.status();
  absl::StatusOr<std::string> metrics =
      peakknn::testing::HttpGet(server->metrics_port, "/metrics");
  if (!metrics.ok()) return metrics.status();
  return Observed{found->ids, stats->backend(),
                  stats->backend_device_memory_bytes(), *metrics,
                  server->Log()};
}

void ExpectBackend(const Observed& run, const std::string& backend) {
  EXPECT_EQ(run.stats_backend, backend);
  EXPECT_THAT(run.metrics,
              HasSubstr("peakknn_backend_info{backend=\"" + backend + "\"} 1"));
  EXPECT_THAT(run.log, HasSubstr("backend " + backend));
  // The CPU holds no device memory; the CUDA backend holds at least the
  // mirror of the rows searched (kRows x kDim f32).
  if (backend == "cpu") {
    EXPECT_EQ(run.device_memory_bytes, 0u);
    EXPECT_THAT(run.metrics,
                HasSubstr("peakknn_backend_device_memory_bytes 0"));
  } else {
    EXPECT_GE(run.device_memory_bytes, static_cast<uint64_t>(kRows) * kDim * 4);
    EXPECT_THAT(run.metrics, HasSubstr("peakknn_backend_device_memory_bytes "));
    EXPECT_THAT(
        run.metrics,
        ::testing::Not(HasSubstr("peakknn_backend_device_memory_bytes 0\n")));
  }
}

TEST(ServerBackendTest, AutoSearchesLikeTheCpuAndSaysWhy) {
  const Expected expected = ExpectedHere();
  absl::StatusOr<Observed> cpu = SearchOn({"--backend=cpu"});
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  ExpectBackend(*cpu, "cpu");
  EXPECT_THAT(cpu->log, ::testing::Not(HasSubstr("CUDA plugin")));
  ASSERT_EQ(cpu->ids.size(), static_cast<size_t>(kQueries));

  absl::StatusOr<Observed> autod = SearchOn({"--backend=auto"});
  ASSERT_TRUE(autod.ok()) << autod.status();
  ExpectBackend(*autod, expected.backend);
  EXPECT_EQ(autod->ids, cpu->ids);
  if (expected.plugin_loads) {
    // cuBLAS is in the process and /metrics (scraped above) still serves.
    EXPECT_THAT(autod->log, HasSubstr("loaded CUDA plugin "));
  }
  if (expected.backend == "cpu") {
    EXPECT_THAT(autod->log, HasSubstr("backend auto: using the CPU backend: " +
                                      expected.reason));
  }
#if !defined(PEAKKNN_CUDA_PLUGIN_PATH)
  EXPECT_THAT(autod->log, HasSubstr("built without CUDA support"));
#endif
}

TEST(ServerBackendTest, CudaSearchesLikeTheCpuOrExitsNamingWhy) {
  const Expected expected = ExpectedHere();
  if (expected.backend == "cuda") {
    absl::StatusOr<Observed> cpu = SearchOn({"--backend=cpu"});
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    absl::StatusOr<Observed> cuda = SearchOn({"--backend=cuda"});
    ASSERT_TRUE(cuda.ok()) << cuda.status();
    ExpectBackend(*cuda, "cuda");
    EXPECT_EQ(cuda->ids, cpu->ids);
    return;
  }
  absl::StatusOr<ServerProcess> cuda = ServerProcess::Start({"--backend=cuda"});
  ASSERT_FALSE(cuda.ok());
  const std::string message(cuda.status().message());
  EXPECT_THAT(message, HasSubstr("exited with 1 before listening"));
  EXPECT_THAT(message,
              HasSubstr("--backend=cuda: cannot use CUDA: " + expected.reason));
}

TEST(ServerBackendTest, MissingOrBogusPluginIsNamed) {
  const std::string dir = peakknn::testing::MakeTempDir("plugin");
  const std::string missing = dir + "/missing.so";
  const std::string bogus = dir + "/bogus.so";
  std::ofstream(bogus) << "not a shared library\n";

  absl::StatusOr<ServerProcess> none =
      ServerProcess::Start({"--backend=cuda", "--cuda_plugin=" + missing});
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(std::string(none.status().message()),
              HasSubstr("--backend=cuda: cannot use CUDA: CUDA plugin " +
                        missing + ": no such file"));

  absl::StatusOr<ServerProcess> bad =
      ServerProcess::Start({"--backend=cuda", "--cuda_plugin=" + bogus});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("CUDA plugin " + bogus + ": cannot load: "));

  // The environment names the plugin too; auto then serves on the CPU.
  absl::StatusOr<ServerProcess> fallback = ServerProcess::Start(
      {"--backend=auto"}, {"PEAKKNN_CUDA_PLUGIN=" + bogus});
  ASSERT_TRUE(fallback.ok()) << fallback.status();
  EXPECT_THAT(fallback->Log(),
              HasSubstr("backend auto: using the CPU backend: CUDA plugin " +
                        bogus + ": cannot load: "));
  EXPECT_THAT(fallback->Log(), HasSubstr("backend cpu"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace peakknn
