// peakknn-server --role=shard as a real process against a real 3-node NATS
// JetStream cluster: it applies its shard's write stream, announces itself
// in the members bucket, serves searches and reads, refuses writes, and
// after kill -9 resumes exactly after the last position it recorded,
// losing nothing.
#include <signal.h>

#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/applied_position.h"
#include "router/cluster_metadata.h"
#include "tests/nats_test_cluster.h"
#include "tests/server_process.h"
#include "tests/shard_test_util.h"

namespace peakknn {
namespace {

using client::Client;
using testing::Batch;
using ::testing::HasSubstr;
using testing::RowModel;
using testing::ServerProcess;
using testing::VectorOf;

constexpr int kShard = 1;
constexpr int kIds = 64;
// Waits on the server: generous for a loaded 2-core machine under
// sanitizers (its member record is rewritten every 2 s).
constexpr absl::Duration kDeadline = absl::Seconds(90);

class ShardServerTest : public testing::ShardClusterTest {
 protected:
  void SetUp() override {
    ShardClusterTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    dir_ = testing::MakeTempDir("shard-server");
  }

  void TearDown() override {
    client_.reset();
    server_.reset();
    ShardClusterTest::TearDown();
  }

  void StartServer() {
    absl::StatusOr<ServerProcess> server = ServerProcess::Start(
        {"--role=shard",
         absl::StrCat("--nats_urls=",
                      absl::StrJoin(cluster_->ClientUrls(), ",")),
         absl::StrCat("--shard=", kShard), "--replica_name=r1", "--backend=cpu",
         "--drain_seconds=2"},
        {}, dir_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::make_unique<ServerProcess>(*std::move(server));
    client::ClientOptions options;
    options.target = server_->target();
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  // The sequence of `collection` that the replica's member record says it
  // applied, once it is at least `sequence`; 0 if not within the deadline.
  uint64_t WaitForMemberApplied(const std::string& collection,
                                uint64_t sequence) {
    const absl::Time deadline = absl::Now() + kDeadline;
    while (absl::Now() < deadline) {
      absl::StatusOr<std::vector<v1::ClusterMember>> members =
          metadata_->ListMembers();
      EXPECT_TRUE(members.ok()) << members.status();
      if (!members.ok()) return 0;
      for (const v1::ClusterMember& m : *members) {
        if (m.shard() != kShard || m.replica() != "r1") continue;
        auto it = m.applied_sequence().find(collection);
        if (it != m.applied_sequence().end() && it->second >= sequence) {
          EXPECT_EQ(m.address(), absl::StrCat("127.0.0.1:", server_->port));
          return it->second;
        }
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return 0;
  }

  uint64_t Publish(const Batch& batch) {
    absl::StatusOr<uint64_t> sequence = testing::PublishToShard(
        *conn_, "docs", kShard, absl::StrCat("docs-", ++published_),
        batch.Encode());
    EXPECT_TRUE(sequence.ok()) << sequence.status();
    return sequence.value_or(0);
  }

  // Through the server's public API: exactly `expected`'s rows.
  void ExpectServed(const RowModel& expected) {
    std::vector<uint64_t> ids(kIds);
    for (int i = 0; i < kIds; ++i) ids[i] = i;
    absl::StatusOr<v1::GetResponse> got = client_->Get("docs", ids);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->vectors_size(), kIds);
    for (int i = 0; i < kIds; ++i) {
      const v1::StoredVector& stored = got->vectors(i);
      auto it = expected.find(i);
      ASSERT_EQ(stored.found(), it != expected.end()) << "id " << i;
      if (it == expected.end()) continue;
      EXPECT_THAT(stored.values(), ::testing::ElementsAreArray(it->second))
          << "id " << i;
    }
    absl::StatusOr<v1::CollectionInfo> info =
        client_->DescribeCollection("docs");
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->live_rows(), static_cast<int64_t>(expected.size()));
  }

  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Client> client_;
  int published_ = 0;
};

TEST_F(ShardServerTest, AppliesServesRefusesWritesAndResumesAfterKill9) {
  ASSERT_TRUE(
      testing::CreateClusterCollection(*conn_, *metadata_, "docs", 2).ok());
  // Batches over 64 ids: upserts, with every fifth a delete.
  constexpr int kBatches = 400;
  constexpr int kFirstPart = 300;
  std::vector<Batch> batches;
  for (int i = 0; i < kBatches; ++i) {
    if (i % 5 == 4) {
      batches.push_back({v1::ShardWriteBatch::MODE_DELETE,
                         {static_cast<uint64_t>(7 * i % kIds),
                          static_cast<uint64_t>((7 * i + 3) % kIds)}});
    } else {
      batches.push_back({v1::ShardWriteBatch::MODE_UPSERT,
                         {static_cast<uint64_t>(3 * i % kIds),
                          static_cast<uint64_t>((3 * i + 1) % kIds)},
                         i});
    }
  }
  RowModel expected;
  for (const Batch& batch : batches) batch.ApplyTo(expected);

  // The first part published while the replica applies it; kill -9 once
  // its position file shows progress (most likely part way).
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::jthread publisher([&] {
    for (int i = 0; i < kFirstPart; ++i) Publish(batches[i]);
  });
  AppliedPositions positions(Env::Default(), dir_ + "/data/applied");
  const absl::Time deadline = absl::Now() + kDeadline;
  uint64_t seen = 0;
  while (seen < 10 && absl::Now() < deadline) {
    absl::StatusOr<std::optional<AppliedPosition>> p = positions.Read("docs");
    ASSERT_TRUE(p.ok()) << p.status();
    seen = p->has_value() ? (*p)->sequence : 0;
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_GE(seen, 10u) << server_->Log();
  ASSERT_EQ(server_->process.Stop(SIGKILL).value_or(-1), 128 + SIGKILL);
  publisher.join();
  absl::StatusOr<std::optional<AppliedPosition>> position =
      positions.Read("docs");
  ASSERT_TRUE(position.ok() && position->has_value()) << position.status();
  const uint64_t killed_at = (*position)->sequence;

  // The second half while it is down, then a restart on the same data.
  uint64_t last = 0;
  for (int i = kFirstPart; i < kBatches; ++i) last = Publish(batches[i]);
  ASSERT_EQ(last, static_cast<uint64_t>(kBatches));
  client_.reset();
  server_.reset();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_EQ(WaitForMemberApplied("docs", last), last) << server_->Log();
  EXPECT_THAT(server_->Log(),
              HasSubstr(absl::StrCat("from stream sequence ", killed_at + 1)));
  ExpectServed(expected);

  // Searches are served: a stored vector finds its own id first.
  const auto& [id, vector] = *expected.begin();
  absl::StatusOr<v1::SearchResponse> found =
      client_->Search("docs", vector, 1, 1.0);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->results_size(), 1);
  ASSERT_GE(found->results(0).ids_size(), 1);
  EXPECT_EQ(found->results(0).ids(0), id);

  // Writes and DDL go through the router.
  const std::vector<uint64_t> one = {1};
  const absl::Status upsert =
      client_->Upsert("docs", one, VectorOf(1, 0)).status();
  EXPECT_EQ(upsert.code(), absl::StatusCode::kFailedPrecondition) << upsert;
  EXPECT_THAT(upsert.message(),
              HasSubstr("this server is a shard replica: write through the "
                        "router"));
  EXPECT_EQ(client_->Delete("docs", one).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client_->DropCollection("docs").code(),
            absl::StatusCode::kFailedPrecondition);
  ExpectServed(expected);
}

TEST(ShardServerFlagsTest, AShardNeedsAClusterAndAName) {
  for (const auto& [flags, complaint] :
       std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--role=shard"}, "--nats_urls must name at least one"},
           {{"--role=shard", "--nats_urls=nats://127.0.0.1:1"},
            "--replica_name must be set"},
           {{"--role=shard", "--nats_urls=nats://127.0.0.1:1",
             "--replica_name=r1", "--shard=-1"},
            "--shard=-1: must be >= 0"},
           {{"--role=primary"}, "must be standalone, shard or router"},
       }) {
    absl::StatusOr<ServerProcess> bad = ServerProcess::Start(flags);
    ASSERT_FALSE(bad.ok()) << flags.back();
    EXPECT_THAT(bad.status().message(), HasSubstr("exited with 2"));
    EXPECT_THAT(bad.status().message(), HasSubstr(complaint));
  }
}

}  // namespace
}  // namespace peakknn
