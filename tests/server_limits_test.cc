// The real server's collection limit and what its collections cost
// (issue 12): under a 256-file limit a server that had created too many
// collections could not restart ("Too many open files" during recovery).
// Now --max_collections is checked against RLIMIT_NOFILE at start-up,
// creates beyond it are RESOURCE_EXHAUSTED, and idle collections hold no
// file and no thread, so a server that started under its limit restarts
// under it, after kill -9 too.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/proc_stats.h"
#include "tests/server_process.h"

namespace peakknn {
namespace {

using client::Client;
using client::ClientOptions;
using peakknn::testing::ChildProcess;
using peakknn::testing::CountOpenFiles;
using peakknn::testing::CountThreads;
using peakknn::testing::RandomVectors;
using peakknn::testing::ServerProcess;
using ::testing::HasSubstr;

constexpr int kDim = 8;
// prlimit execs the server, so the child's pid is the server's.
const std::vector<std::string> kLimit256 = {"/usr/bin/prlimit",
                                            "--nofile=256:256", "--"};

v1::CollectionSchema Schema(const std::string& name) {
  v1::CollectionSchema schema;
  schema.set_name(name);
  schema.set_dim(kDim);
  schema.set_metric(v1::METRIC_L2);
  return schema;
}

std::unique_ptr<Client> Connect(const ServerProcess& server) {
  ClientOptions options;
  options.target = server.target();
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(options);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

std::vector<uint64_t> Ids(int collection) {
  return {static_cast<uint64_t>(collection) * 10,
          static_cast<uint64_t>(collection) * 10 + 1};
}

// The collections' threads and log files end once idle, so neither grows
// with the number of collections.
TEST(ServerLimitsTest, IdleCollectionsHoldNoThreadsOrFiles) {
  // --threads starts the engine pool up front, so that the baseline has it.
  absl::StatusOr<ServerProcess> server =
      ServerProcess::Start({"--threads=2", "--drain_seconds=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::unique_ptr<Client> client = Connect(*server);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->ListCollections().ok());
  const pid_t pid = server->process.pid();
  const std::string data = server->dir + "/data";
  const int threads = CountThreads(pid);
  const int files = CountOpenFiles(pid);
  ASSERT_GT(threads, 0);

  constexpr int kCollections = 50;
  for (int i = 0; i < kCollections; ++i) {
    const std::string name = absl::StrCat("c", i);
    ASSERT_TRUE(client->CreateCollection(Schema(name)).ok());
    const std::vector<float> rows = RandomVectors(2, kDim, i);
    ASSERT_TRUE(client->InsertAll(name, Ids(i), rows).ok());
    ASSERT_TRUE(client->Search(name, std::span(rows).first(kDim), 1, 1.0).ok());
  }
  // Writing and searching, each collection held a commit thread, a batcher
  // thread and its log file; 5 s after its last use, none. gRPC may keep a
  // worker or two more than at the start.
  constexpr int kSlack = 4;
  const bool idle = peakknn::testing::WaitFor(
      [&] {
        return CountThreads(pid) <= threads + kSlack &&
               CountOpenFiles(pid, data) == 0;
      },
      absl::Seconds(30));
  EXPECT_TRUE(idle) << kCollections
                    << " idle collections: " << CountThreads(pid) - threads
                    << " threads and " << CountOpenFiles(pid, data)
                    << " log files more";
  EXPECT_LE(CountOpenFiles(pid), files + kSlack);
}

// The original bug, end to end: collections up to the limit under a
// 256-file limit, kill -9, restart under the same limit.
TEST(ServerLimitsTest, RestartsUnderALowOpenFileLimitAfterKill) {
  // 40 x 3 + 128 = 248 <= 256.
  const std::vector<std::string> flags = {"--max_collections=40",
                                          "--drain_seconds=2"};
  absl::StatusOr<ServerProcess> first =
      ServerProcess::Start(flags, {}, "", kLimit256);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string dir = first->dir;
  std::unique_ptr<Client> client = Connect(*first);
  ASSERT_NE(client, nullptr);
  constexpr int kCollections = 40;
  for (int i = 0; i < kCollections; ++i) {
    const std::string name = absl::StrCat("c", i);
    ASSERT_TRUE(client->CreateCollection(Schema(name)).ok()) << name;
    ASSERT_TRUE(client->InsertAll(name, Ids(i), RandomVectors(2, kDim, i)).ok())
        << name;
  }
  const auto refused = client->CreateCollection(Schema("one_too_many"));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("40 collections exist and --max_collections=40"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/data/one_too_many"));

  client.reset();
  absl::StatusOr<int> killed = first->process.Stop(SIGKILL);
  ASSERT_TRUE(killed.ok()) << killed.status();
  first->owns_dir = false;  // the restart below takes the directory over
  absl::StatusOr<ServerProcess> second =
      ServerProcess::Start(flags, {}, dir, kLimit256);
  ASSERT_TRUE(second.ok()) << second.status();
  second->owns_dir = true;
  client = Connect(*second);
  ASSERT_NE(client, nullptr);
  auto listed = client->ListCollections();
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->size(), static_cast<size_t>(kCollections));
  for (int i = 0; i < kCollections; ++i) {
    const std::string name = absl::StrCat("c", i);
    const std::vector<float> want = RandomVectors(2, kDim, i);
    auto got = client->Get(name, Ids(i));
    ASSERT_TRUE(got.ok()) << name << ": " << got.status();
    for (int r = 0; r < 2; ++r) {
      const v1::StoredVector& v = got->vectors(r);
      ASSERT_TRUE(v.found()) << name << " row " << r;
      EXPECT_THAT(v.values(),
                  ::testing::ElementsAreArray(want.data() + r * kDim,
                                              want.data() + (r + 1) * kDim));
    }
    EXPECT_TRUE(client->Search(name, std::span(want).first(kDim), 1).ok());
  }
  EXPECT_EQ(client->CreateCollection(Schema("one_too_many")).status().code(),
            absl::StatusCode::kResourceExhausted);
}

// Runs `peakknn-server --check_config` under `launcher`; returns its exit
// code and fills `log` with what it printed.
int CheckConfig(const std::vector<std::string>& launcher,
                const std::string& max_collections, std::string* log) {
  const std::string dir = peakknn::testing::MakeTempDir("peakknn-limits");
  std::vector<std::string> argv = launcher;
  argv.insert(argv.end(), {PEAKKNN_SERVER_BIN, "--check_config",
                           "--max_collections=" + max_collections});
  absl::StatusOr<ChildProcess> child =
      ChildProcess::Spawn(argv, {}, dir + "/out.log");
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return -1;
  absl::StatusOr<int> rc = child->Wait(30);
  EXPECT_TRUE(rc.ok()) << rc.status();
  std::stringstream out;
  out << std::ifstream(dir + "/out.log").rdbuf();
  *log = out.str();
  std::filesystem::remove_all(dir);
  return rc.ok() ? *rc : -1;
}

TEST(ServerLimitsTest, MaxCollectionsThatCannotFitTheFileLimitStopsStartUp) {
  // 100 x 3 + 128 = 428 > 256.
  absl::StatusOr<ServerProcess> server =
      ServerProcess::Start({"--max_collections=100"}, {}, "", kLimit256);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()),
              HasSubstr("exited with 2"));
  EXPECT_THAT(std::string(server.status().message()),
              HasSubstr("--max_collections=100 needs up to 428 open files"));
  EXPECT_THAT(std::string(server.status().message()),
              HasSubstr("open-file limit (RLIMIT_NOFILE) is 256"));
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("at most 42"));

  std::string log;
  EXPECT_EQ(CheckConfig(kLimit256, "100", &log), 2) << log;
  EXPECT_THAT(log, HasSubstr("--max_collections=100"));
  EXPECT_EQ(CheckConfig(kLimit256, "42", &log), 0) << log;
  EXPECT_THAT(log, HasSubstr("max_collections=42\n"));
  // The soft limit is raised to the hard one first: 1000 x 3 + 128 = 3128
  // fits 4096 only once it is.
  EXPECT_EQ(CheckConfig({"/usr/bin/prlimit", "--nofile=256:4096", "--"}, "1000",
                        &log),
            0)
      << log;
}

}  // namespace
}  // namespace peakknn
