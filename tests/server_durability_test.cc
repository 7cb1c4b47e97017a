// Durability through the real server: the real peakknn-server binary on a
// loopback port with a --data_dir, driven by the real C++ client, stopped
// with SIGTERM (clean: checkpoint) or SIGKILL (crash: log replay) and
// restarted on the same directory. Whatever was acknowledged must be there
// afterwards, exactly.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"

namespace peakknn {
namespace {

using client::Client;
using client::ClientOptions;
using peakknn::testing::RandomVectors;
using peakknn::testing::ServerProcess;
using ::testing::HasSubstr;

constexpr int kDim = 16;

std::vector<uint64_t> Iota(uint64_t first, int64_t n) {
  std::vector<uint64_t> ids(n);
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

v1::CollectionSchema Schema(const std::string& name, v1::Metric metric) {
  v1::CollectionSchema schema;
  schema.set_name(name);
  schema.set_dim(kDim);
  schema.set_metric(metric);
  return schema;
}

// One server process on `dir` (a fresh one when empty) and a client to it.
struct Running {
  std::unique_ptr<ServerProcess> server;
  std::unique_ptr<Client> client;
};

Running Start(const std::string& dir,
              const std::vector<std::string>& flags = {}) {
  std::vector<std::string> all = {"--drain_seconds=2"};
  all.insert(all.end(), flags.begin(), flags.end());
  Running r;
  absl::StatusOr<ServerProcess> server = ServerProcess::Start(all, {}, dir);
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return r;
  r.server = std::make_unique<ServerProcess>(std::move(*server));
  ClientOptions options;
  options.target = r.server->target();
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(options);
  EXPECT_TRUE(c.ok()) << c.status();
  if (c.ok()) r.client = std::move(*c);
  return r;
}

// Expects every id in `ids` to be stored with exactly its row of `rows`
// (row-major, ids.size() x kDim); returns how many were not.
int64_t ExpectStoredExactly(Client& client, const std::string& collection,
                            std::span<const uint64_t> ids,
                            std::span<const float> rows) {
  int64_t wrong = 0;
  constexpr size_t kChunk = 4096;
  for (size_t first = 0; first < ids.size(); first += kChunk) {
    const auto chunk = ids.subspan(first, std::min(kChunk, ids.size() - first));
    auto got = client.Get(collection, chunk);
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok()) return static_cast<int64_t>(ids.size());
    for (size_t i = 0; i < chunk.size(); ++i) {
      const v1::StoredVector& v = got->vectors(static_cast<int>(i));
      const float* want = &rows[(first + i) * kDim];
      bool same = v.found() && v.values_size() == kDim;
      for (int j = 0; same && j < kDim; ++j) same = v.values(j) == want[j];
      if (!same) ++wrong;
    }
  }
  return wrong;
}

int64_t CountFound(Client& client, const std::string& collection,
                   std::span<const uint64_t> ids) {
  auto got = client.Get(collection, ids);
  EXPECT_TRUE(got.ok()) << got.status();
  if (!got.ok()) return -1;
  int64_t found = 0;
  for (const v1::StoredVector& v : got->vectors()) found += v.found();
  return found;
}

TEST(ServerDurabilityTest, SigtermCheckpointsAndRestartKeepsEverything) {
  Running first = Start("");
  ASSERT_NE(first.client, nullptr);
  const std::string dir = first.server->dir;
  Client& c1 = *first.client;
  ASSERT_TRUE(c1.CreateCollection(Schema("d", v1::METRIC_L2)).ok());
  ASSERT_TRUE(c1.CreateCollection(Schema("e", v1::METRIC_INNER_PRODUCT)).ok());
  const int64_t rows = 3000;
  std::vector<float> data = RandomVectors(rows, kDim, 1);
  const std::vector<uint64_t> ids = Iota(0, rows);
  auto inserted = c1.InsertAll("d", ids, data);
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  const std::vector<float> e_data = RandomVectors(10, kDim, 2);
  ASSERT_TRUE(c1.InsertAll("e", Iota(100, 10), e_data).ok());
  // Row 5 replaced, rows 6 and 7 deleted.
  const uint64_t five[] = {5};
  std::vector<float> far(kDim, 100.0f);
  auto up = c1.Upsert("d", five, far);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->durability(), v1::DURABILITY_FSYNC);
  std::copy(far.begin(), far.end(), data.begin() + 5 * kDim);
  const uint64_t gone[] = {6, 7};
  auto del = c1.Delete("d", gone);
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->deleted(), 2);
  auto before = c1.DescribeCollection("d");
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->last_sequence(), del->sequence());  // durable on ack
  EXPECT_GT(before->disk_bytes(), 0);

  absl::StatusOr<int> rc = first.server->process.Stop(SIGTERM);
  ASSERT_TRUE(rc.ok()) << rc.status();
  EXPECT_EQ(*rc, 0) << first.server->Log();
  EXPECT_THAT(first.server->Log(), HasSubstr("checkpoint written"));
  // The layout README promises: data_dir/<collection>/MANIFEST.
  EXPECT_TRUE(std::filesystem::exists(dir + "/data/d/MANIFEST"));

  Running second = Start(dir);
  ASSERT_NE(second.client, nullptr);
  Client& c2 = *second.client;
  auto list = c2.ListCollections();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].schema().name(), "d");
  EXPECT_EQ((*list)[1].schema().metric(), v1::METRIC_INNER_PRODUCT);
  auto after = c2.DescribeCollection("d");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->live_rows(), rows - 2);
  EXPECT_EQ(after->last_sequence(), before->last_sequence());

  std::vector<uint64_t> kept;
  std::vector<float> kept_rows;
  for (int64_t i = 0; i < rows; ++i) {
    if (i == 6 || i == 7) continue;
    kept.push_back(static_cast<uint64_t>(i));
    kept_rows.insert(kept_rows.end(), data.begin() + i * kDim,
                     data.begin() + (i + 1) * kDim);
  }
  EXPECT_EQ(ExpectStoredExactly(c2, "d", kept, kept_rows), 0);
  EXPECT_EQ(CountFound(c2, "d", gone), 0);
  EXPECT_EQ(ExpectStoredExactly(c2, "e", Iota(100, 10), e_data), 0);
  // Searches see the recovered rows (and not the deleted ones).
  auto r = c2.Search("d", far, 1, 1.0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results(0).ids(0), 5u);
  // Sequence numbers continue past the recovered ones.
  const uint64_t next[] = {rows};
  auto up2 = c2.Upsert("d", next, far);
  ASSERT_TRUE(up2.ok());
  EXPECT_GT(up2->sequence(), before->last_sequence());
  rc = second.server->process.Stop(SIGTERM);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 0) << second.server->Log();
}

// SIGKILL while a stream is mid-flight, then restart: every acknowledged
// batch is back with its exact vectors (log replay), acknowledged deletes
// stay deleted, and each unacknowledged batch is all there or all absent.
class KillRestartTest : public ::testing::TestWithParam<std::string> {};

TEST_P(KillRestartTest, EveryAcknowledgedBatchSurvivesSigkill) {
  const std::string durability = GetParam();
  Running first = Start("", {absl::StrCat("--durability=", durability)});
  ASSERT_NE(first.client, nullptr);
  const std::string dir = first.server->dir;
  Client& c1 = *first.client;
  ASSERT_TRUE(c1.CreateCollection(Schema("k", v1::METRIC_L2)).ok());
  const int64_t base_rows = 1000;
  const std::vector<float> base = RandomVectors(base_rows, kDim, 3);
  ASSERT_TRUE(c1.InsertAll("k", Iota(0, base_rows), base).ok());
  const std::vector<uint64_t> deleted = Iota(0, 100);
  auto del = c1.Delete("k", deleted);
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->durability(),
            durability == "fsync" ? v1::DURABILITY_FSYNC : v1::DURABILITY_NONE);

  // Stream 40000 rows in batches of 64 (a window of 8 unacked) and kill the
  // server once 10000 rows are acknowledged.
  const int64_t rows = 40000, batch = 64;
  const std::vector<float> data = RandomVectors(rows, kDim, 4);
  const std::vector<uint64_t> ids = Iota(base_rows, rows);
  client::InsertOptions options;
  options.batch_rows = batch;
  int64_t acked = 0;
  bool killed = false;
  auto result =
      c1.InsertAll("k", ids, data, options, [&](int64_t acked_rows, int64_t) {
        if (killed) return;
        acked = acked_rows;
        if (acked_rows >= 10000) {
          killed = true;
          kill(first.server->process.pid(), SIGKILL);
        }
      });
  ASSERT_TRUE(killed);
  EXPECT_FALSE(result.ok());
  absl::StatusOr<int> rc = first.server->process.Wait(10);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 128 + SIGKILL);

  Running second = Start(dir);
  ASSERT_NE(second.client, nullptr);
  Client& c2 = *second.client;
  EXPECT_THAT(second.server->Log(), HasSubstr("recovered 1 collections"));
  // Acknowledged: the base rows (less the deleted) and the first `acked`
  // streamed rows, exactly.
  EXPECT_EQ(ExpectStoredExactly(
                c2, "k", std::span(ids).first(acked),
                std::span(data).first(static_cast<size_t>(acked * kDim))),
            0);
  EXPECT_EQ(ExpectStoredExactly(c2, "k", Iota(100, base_rows - 100),
                                std::span(base).subspan(100 * kDim)),
            0);
  EXPECT_EQ(CountFound(c2, "k", deleted), 0);
  // Unacknowledged batches: whole or absent, never half.
  int64_t present_rows = acked;
  for (int64_t first_row = acked; first_row < rows; first_row += batch) {
    const auto chunk =
        std::span(ids).subspan(first_row, std::min(batch, rows - first_row));
    const int64_t found = CountFound(c2, "k", chunk);
    EXPECT_TRUE(found == 0 || found == static_cast<int64_t>(chunk.size()))
        << "batch at row " << first_row << " half applied: " << found;
    if (found > 0) {
      EXPECT_EQ(ExpectStoredExactly(c2, "k", chunk,
                                    std::span(data).subspan(
                                        first_row * kDim, chunk.size() * kDim)),
                0);
    }
    present_rows += found;
  }
  auto info = c2.DescribeCollection("k");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->live_rows(), base_rows - 100 + present_rows);
  rc = second.server->process.Stop(SIGTERM);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 0) << second.server->Log();
}

INSTANTIATE_TEST_SUITE_P(Durability, KillRestartTest,
                         ::testing::Values("fsync", "none"));

// A corrupt record in the middle of a log stops start-up with DATA_LOSS
// naming the file; --truncate_corrupt_wal starts with the log cut there.
TEST(ServerDurabilityTest, CorruptLogRefusesToStartUnlessTruncationIsAsked) {
  Running first = Start("");
  ASSERT_NE(first.client, nullptr);
  const std::string dir = first.server->dir;
  Client& c1 = *first.client;
  ASSERT_TRUE(c1.CreateCollection(Schema("w", v1::METRIC_L2)).ok());
  const std::vector<float> data = RandomVectors(20, kDim, 5);
  for (int i = 0; i < 20; ++i) {  // one log record each
    const uint64_t id[] = {static_cast<uint64_t>(i)};
    ASSERT_TRUE(
        c1.Upsert("w", id, std::span(data).subspan(i * kDim, kDim)).ok());
  }
  ASSERT_TRUE(first.server->process.Stop(SIGKILL).ok());  // no checkpoint

  std::string wal;
  for (const auto& entry :
       std::filesystem::directory_iterator(dir + "/data/w")) {
    if (entry.path().filename().string().starts_with("wal-") &&
        entry.file_size() > 0) {
      wal = entry.path().string();
    }
  }
  ASSERT_FALSE(wal.empty());
  {
    // Flip one byte a third of the way in: a bad record with good ones
    // after it.
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    const std::streamoff at =
        static_cast<std::streamoff>(std::filesystem::file_size(wal) / 3);
    f.seekg(at);
    char byte = 0;
    f.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x5a);
    f.seekp(at);
    f.write(&byte, 1);
  }

  absl::StatusOr<ServerProcess> refused = ServerProcess::Start({}, {}, dir);
  ASSERT_FALSE(refused.ok());
  const std::string log(refused.status().message());
  EXPECT_THAT(log, HasSubstr("exited with 1 before serving"));
  EXPECT_THAT(log, HasSubstr("DATA_LOSS"));
  EXPECT_THAT(log, HasSubstr(std::filesystem::path(wal).filename().string()));

  Running truncated = Start(dir, {"--truncate_corrupt_wal"});
  ASSERT_NE(truncated.client, nullptr);
  auto info = truncated.client->DescribeCollection("w");
  ASSERT_TRUE(info.ok()) << info.status() << truncated.server->Log();
  EXPECT_GT(info->live_rows(), 0);
  EXPECT_LT(info->live_rows(), 20);
  // What survived is the prefix before the cut, exactly.
  EXPECT_EQ(
      ExpectStoredExactly(*truncated.client, "w", Iota(0, info->live_rows()),
                          std::span(data).first(info->live_rows() * kDim)),
      0);
  absl::StatusOr<int> rc = truncated.server->process.Stop(SIGTERM);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 0) << truncated.server->Log();
}

TEST(ServerDurabilityTest, WalFsyncLatencyIsExported) {
  Running r = Start("");
  ASSERT_NE(r.client, nullptr);
  ASSERT_TRUE(r.client->CreateCollection(Schema("m", v1::METRIC_L2)).ok());
  const std::vector<float> data = RandomVectors(500, kDim, 6);
  ASSERT_TRUE(r.client->InsertAll("m", Iota(0, 500), data).ok());
  absl::StatusOr<std::string> metrics =
      peakknn::testing::HttpGet(r.server->metrics_port, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  // At least one fsync observed (the count line is not "... 0").
  const std::string key = "peakknn_wal_fsync_duration_seconds_count ";
  const size_t at = metrics->find(key);
  ASSERT_NE(at, std::string::npos) << *metrics;
  EXPECT_NE(metrics->substr(at + key.size(), 2), "0\n");
  absl::StatusOr<int> rc = r.server->process.Stop(SIGTERM);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 0) << r.server->Log();
}

TEST(ServerDurabilityTest, BadDurabilityFlagExitsTwoNamingIt) {
  auto bad = ServerProcess::Start({"--durability=sometimes"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("--durability=\"sometimes\""));
}

}  // namespace
}  // namespace peakknn
