// The shard role (router/shard_replica.h): write-batch encoding, the
// applied-position files, and a ShardReplica applying shard streams of a
// real 3-node NATS JetStream cluster to a real CollectionManager: rows after
// inserts, upserts and deletes; resuming after a restart at the recorded
// position; idempotent replay; a malformed message; an aged-out stream;
// collections following the metadata.
#include "router/shard_replica.h"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/shard_write_batch.h"
#include "store/collection_manager.h"
#include "tests/nats_test_cluster.h"
#include "tests/shard_test_util.h"
#include "tests/store_test_util.h"

namespace peakknn {
namespace {

using ::peakknn::testing::Batch;
using ::peakknn::testing::VectorOf;
using ::testing::HasSubstr;

constexpr int kDim = testing::kShardTestDim;
constexpr int kShard = 1;
// Everything that waits on the replica: generous for a loaded 2-core
// machine under sanitizers.
constexpr absl::Duration kDeadline = absl::Seconds(60);

CollectionSchema Schema(const std::string& name) {
  CollectionSchema schema;
  schema.name = name;
  schema.dim = kDim;
  schema.metric = Metric::kL2;
  return schema;
}

TEST(ShardWriteBatchTest, RoundTripsAndNamesWhatIsWrong) {
  const CollectionSchema schema = Schema("docs");
  const Batch upsert{v1::ShardWriteBatch::MODE_UPSERT, {7, 9}, 3};
  absl::StatusOr<v1::ShardWriteBatch> decoded =
      DecodeShardWriteBatch(upsert.Encode(), schema, "peakknn_docs_1", 5);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->mode(), v1::ShardWriteBatch::MODE_UPSERT);
  EXPECT_THAT(decoded->ids(), ::testing::ElementsAre(7, 9));
  ASSERT_EQ(decoded->vectors_size(), 2 * kDim);
  EXPECT_EQ(decoded->vectors(kDim), VectorOf(9, 3)[0]);

  const auto error = [&](std::string_view bytes) {
    return DecodeShardWriteBatch(bytes, schema, "peakknn_docs_1", 17).status();
  };
  const absl::Status garbage = error("\xff\xff\xff not a message");
  EXPECT_EQ(garbage.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(garbage.message(),
              HasSubstr("stream peakknn_docs_1 sequence 17: ShardWriteBatch"));

  const std::vector<uint64_t> ids = {1, 2};
  const std::vector<float> five(5, 1.0f);
  const absl::Status short_rows =
      error(EncodeShardWriteBatch(v1::ShardWriteBatch::MODE_INSERT, ids, five));
  EXPECT_EQ(short_rows.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(short_rows.message(),
              HasSubstr("vectors has 5 values, not 2 ids x dim 4"));

  const absl::Status no_mode = error(
      EncodeShardWriteBatch(v1::ShardWriteBatch::MODE_UNSPECIFIED, ids, {}));
  EXPECT_EQ(no_mode.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(no_mode.message(), HasSubstr("mode 0"));

  const std::vector<float> eight(8, 1.0f);
  const absl::Status delete_with_rows = error(
      EncodeShardWriteBatch(v1::ShardWriteBatch::MODE_DELETE, ids, eight));
  EXPECT_EQ(delete_with_rows.code(), absl::StatusCode::kDataLoss);

  const std::vector<uint64_t> twice = {3, 3};
  const absl::Status duplicate = error(
      EncodeShardWriteBatch(v1::ShardWriteBatch::MODE_UPSERT, twice, eight));
  EXPECT_EQ(duplicate.code(), absl::StatusCode::kDataLoss);
}

TEST(AppliedPositionsTest, WritesReadsDeletesAndRefusesGarbage) {
  const std::string dir = testing::StoreTempDir("positions") + "/state";
  Env* env = Env::Default();
  AppliedPositions positions(env, dir);
  ASSERT_TRUE(positions.Init().ok());
  absl::StatusOr<std::optional<AppliedPosition>> none = positions.Read("docs");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(
      positions.Write("docs", {.creation_revision = 12, .sequence = 34}).ok());
  absl::StatusOr<std::optional<AppliedPosition>> read = positions.Read("docs");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(**read, (AppliedPosition{12, 34}));

  ASSERT_TRUE(positions.Delete("docs").ok());
  ASSERT_TRUE(positions.Delete("docs").ok());
  EXPECT_FALSE(positions.Read("docs")->has_value());

  ASSERT_TRUE(WriteFileAtomically(env, dir, dir + "/bad", "12 x\n").ok());
  const absl::Status bad = positions.Read("bad").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(bad.message(), HasSubstr(dir + "/bad"));
}

class ShardReplicaTest : public testing::ShardClusterTest {
 protected:
  void SetUp() override {
    ShardClusterTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    dir_ = testing::StoreTempDir("shard-replica");
    ASSERT_NO_FATAL_FAILURE(OpenLocal());
  }

  void TearDown() override {
    replica_.reset();
    local_.reset();
    ShardClusterTest::TearDown();
  }

  void OpenLocal() {
    absl::StatusOr<std::unique_ptr<CollectionManager>> local =
        CollectionManager::Open({.data_dir = dir_ + "/collections",
                                 .maintenance_interval = absl::ZeroDuration(),
                                 .log = [](std::string_view) {}});
    ASSERT_TRUE(local.ok()) << local.status();
    local_ = *std::move(local);
  }

  void StartReplica() {
    absl::StatusOr<std::unique_ptr<ShardReplica>> replica =
        ShardReplica::Start(*conn_, *metadata_, *local_,
                            {.shard = kShard,
                             .replica = "r1",
                             .address = "127.0.0.1:50072",
                             .state_dir = dir_ + "/applied",
                             .poll_interval = absl::Milliseconds(200),
                             .max_fetch = 7,  // several fetches per run
                             .fetch_wait = absl::Milliseconds(200),
                             .retry_interval = absl::Milliseconds(200),
                             .log = [this](std::string_view line) {
                               std::lock_guard lock(log_mu_);
                               log_.emplace_back(line);
                             }});
    ASSERT_TRUE(replica.ok()) << replica.status();
    replica_ = *std::move(replica);
  }

  uint64_t CreateCollection(const std::string& name, int shards,
                            int64_t max_bytes = int64_t{1} << 30) {
    absl::StatusOr<uint64_t> revision = testing::CreateClusterCollection(
        *conn_, *metadata_, name, shards, max_bytes);
    EXPECT_TRUE(revision.ok()) << revision.status();
    return revision.value_or(0);
  }

  uint64_t PublishRaw(const std::string& collection, std::string_view payload) {
    absl::StatusOr<uint64_t> sequence = testing::PublishToShard(
        *conn_, collection, kShard, absl::StrCat(collection, "-", ++published_),
        payload);
    EXPECT_TRUE(sequence.ok()) << sequence.status();
    return sequence.value_or(0);
  }

  uint64_t Publish(const std::string& collection, const Batch& batch) {
    batch.ApplyTo(expected_);
    return PublishRaw(collection, batch.Encode());
  }

  // The replica's view of `name`, once `ready` holds for it (or the
  // deadline passed: nullopt).
  std::optional<ReplicaCollection> WaitFor(
      const std::string& name,
      const std::function<bool(const ReplicaCollection&)>& ready) {
    const absl::Time deadline = absl::Now() + kDeadline;
    while (absl::Now() < deadline) {
      for (const ReplicaCollection& c : replica_->Collections()) {
        if (c.name == name && ready(c)) return c;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return std::nullopt;
  }

  std::optional<ReplicaCollection> WaitForApplied(const std::string& name,
                                                  uint64_t sequence) {
    return WaitFor(name, [&](const ReplicaCollection& c) {
      return c.progress.applied_sequence >= sequence;
    });
  }

  // Waits until `name`'s applier halts, then checks why and where.
  void ExpectHalts(const std::string& name, absl::StatusCode code,
                   const std::string& message, uint64_t applied_sequence) {
    const std::optional<ReplicaCollection> halted =
        WaitFor(name, [](const ReplicaCollection& collection) {
          return collection.progress.halted;
        });
    ASSERT_TRUE(halted.has_value()) << "did not stop within the deadline";
    EXPECT_EQ(halted->progress.status.code(), code) << halted->progress.status;
    EXPECT_THAT(halted->progress.status.message(), HasSubstr(message));
    EXPECT_EQ(halted->progress.applied_sequence, applied_sequence);
  }

  // The local collection holds exactly expected_'s rows among ids [0, 64).
  void ExpectRows(const std::string& name) {
    const std::vector<uint64_t> ids = testing::IdRange(0, 64);
    absl::StatusOr<std::vector<std::optional<std::vector<float>>>> got =
        local_->Get(name, ids);
    ASSERT_TRUE(got.ok()) << got.status();
    for (uint64_t id : ids) {
      auto it = expected_.find(id);
      if (it == expected_.end()) {
        EXPECT_FALSE((*got)[id].has_value()) << "id " << id;
      } else {
        ASSERT_TRUE((*got)[id].has_value()) << "id " << id;
        EXPECT_EQ(*(*got)[id], it->second) << "id " << id;
      }
    }
    absl::StatusOr<CollectionInfo> info = local_->DescribeCollection(name);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->live_rows, static_cast<int64_t>(expected_.size()));
  }

  bool Logged(const std::string& text) {
    std::lock_guard lock(log_mu_);
    for (const std::string& line : log_) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

  bool LocalHas(const std::string& name) {
    return local_->DescribeCollection(name).ok();
  }

  std::string dir_;
  std::unique_ptr<CollectionManager> local_;
  std::unique_ptr<ShardReplica> replica_;
  testing::RowModel expected_;
  int published_ = 0;
  std::mutex log_mu_;
  std::vector<std::string> log_ ABSL_GUARDED_BY(log_mu_);
};

TEST_F(ShardReplicaTest, AppliesInsertsUpsertsAndDeletesInOrder) {
  CreateCollection("docs", 2);
  ASSERT_NO_FATAL_FAILURE(StartReplica());
  Publish("docs", {v1::ShardWriteBatch::MODE_INSERT, {1, 2, 3}, 0});
  Publish("docs", {v1::ShardWriteBatch::MODE_UPSERT, {2, 4}, 1});
  Publish("docs", {v1::ShardWriteBatch::MODE_DELETE, {1, 63}, 0});
  const uint64_t last =
      Publish("docs", {v1::ShardWriteBatch::MODE_INSERT, {5}, 0});
  ASSERT_EQ(last, 4u);

  const std::optional<ReplicaCollection> docs = WaitForApplied("docs", last);
  ASSERT_TRUE(docs.has_value()) << "not applied within the deadline";
  EXPECT_TRUE(docs->progress.status.ok()) << docs->progress.status;
  ExpectRows("docs");

  // Its heartbeat tells the router how far it got.
  const absl::Time deadline = absl::Now() + kDeadline;
  bool seen = false;
  while (!seen && absl::Now() < deadline) {
    absl::StatusOr<std::vector<v1::ClusterMember>> members =
        metadata_->ListMembers();
    ASSERT_TRUE(members.ok()) << members.status();
    for (const v1::ClusterMember& m : *members) {
      seen = seen || (m.shard() == kShard && m.replica() == "r1" &&
                      m.address() == "127.0.0.1:50072" &&
                      m.applied_sequence().contains("docs") &&
                      m.applied_sequence().at("docs") == last);
    }
    if (!seen) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(seen) << "no heartbeat with docs at sequence " << last;
}

TEST_F(ShardReplicaTest, ResumesAfterARestartWhereItStopped) {
  CreateCollection("docs", 2);
  for (int i = 0; i < 30; ++i) {
    Publish("docs", {v1::ShardWriteBatch::MODE_UPSERT,
                     {static_cast<uint64_t>(i % 20), 40},
                     i});
  }
  ASSERT_NO_FATAL_FAILURE(StartReplica());
  std::optional<ReplicaCollection> docs = WaitForApplied("docs", 10);
  ASSERT_TRUE(docs.has_value());

  // Stopped part way (the store closed too, as in a process restart), with
  // more writes published meanwhile.
  replica_.reset();
  local_.reset();
  uint64_t stopped_at;
  {
    AppliedPositions positions(Env::Default(), dir_ + "/applied");
    absl::StatusOr<std::optional<AppliedPosition>> p = positions.Read("docs");
    ASSERT_TRUE(p.ok() && p->has_value()) << p.status();
    stopped_at = (*p)->sequence;
  }
  uint64_t last = 0;
  for (int i = 30; i < 60; ++i) {
    const auto mode = i % 3 == 0 ? v1::ShardWriteBatch::MODE_DELETE
                                 : v1::ShardWriteBatch::MODE_UPSERT;
    last = Publish("docs", {mode, {static_cast<uint64_t>(i % 25)}, i});
  }
  ASSERT_NO_FATAL_FAILURE(OpenLocal());
  ASSERT_NO_FATAL_FAILURE(StartReplica());
  docs = WaitForApplied("docs", last);
  ASSERT_TRUE(docs.has_value()) << "not applied within the deadline";
  EXPECT_EQ(docs->progress.applied_sequence, last);
  EXPECT_TRUE(Logged(absl::StrCat("applying collection docs (revision ",
                                  docs->creation_revision,
                                  ") from stream sequence ", stopped_at + 1)))
      << "did not resume right after sequence " << stopped_at;
  ExpectRows("docs");
}

// A crash after the local writes and before the position file: the batches
// are applied again on restart, and nothing changes.
TEST_F(ShardReplicaTest, ReplayingBatchesAlreadyAppliedChangesNothing) {
  const uint64_t revision = CreateCollection("docs", 2);
  uint64_t last = 0;
  for (int i = 0; i < 12; ++i) {
    const auto mode = i % 4 == 3 ? v1::ShardWriteBatch::MODE_DELETE
                                 : v1::ShardWriteBatch::MODE_INSERT;
    last = Publish("docs", {mode,
                            {static_cast<uint64_t>(3 * i % 10),
                             static_cast<uint64_t>(3 * i % 10 + 10)},
                            i});
  }
  ASSERT_NO_FATAL_FAILURE(StartReplica());
  ASSERT_TRUE(WaitForApplied("docs", last).has_value());
  replica_.reset();
  AppliedPositions positions(Env::Default(), dir_ + "/applied");
  ASSERT_TRUE(
      positions.Write("docs", {.creation_revision = revision, .sequence = 2})
          .ok());

  ASSERT_NO_FATAL_FAILURE(StartReplica());
  const std::optional<ReplicaCollection> docs = WaitForApplied("docs", last);
  ASSERT_TRUE(docs.has_value());
  EXPECT_TRUE(docs->progress.status.ok()) << docs->progress.status;
  EXPECT_TRUE(Logged("from stream sequence 3"));
  ExpectRows("docs");
}

TEST_F(ShardReplicaTest, AMalformedMessageStopsTheReplicaWithDataLoss) {
  CreateCollection("docs", 2);
  Publish("docs", {v1::ShardWriteBatch::MODE_INSERT, {1}, 0});
  ASSERT_EQ(PublishRaw("docs", "\x08\x63 garbage"), 2u);
  Publish("docs", {v1::ShardWriteBatch::MODE_INSERT, {2}, 0});
  ASSERT_NO_FATAL_FAILURE(StartReplica());
  // Everything before it applied, nothing after.
  ExpectHalts("docs", absl::StatusCode::kDataLoss,
              "stream peakknn_docs_1 sequence 2: ShardWriteBatch", 1);
  expected_.erase(2);
  ExpectRows("docs");
}

TEST_F(ShardReplicaTest, AnAgedOutStreamSaysBootstrapIsNotBuiltYet) {
  // Room for about four 1 KiB messages: older ones are dropped at once.
  CreateCollection("docs", 2, 4 << 10);
  std::vector<uint64_t> ids(40);
  for (int i = 0; i < 10; ++i) {
    for (size_t j = 0; j < ids.size(); ++j) ids[j] = 100 * i + j;
    Publish("docs", {v1::ShardWriteBatch::MODE_UPSERT, ids, i});
  }
  ASSERT_NO_FATAL_FAILURE(StartReplica());
  ExpectHalts("docs", absl::StatusCode::kOutOfRange,
              "bootstrap from a peer's checkpoint is not built yet", 0);
}

TEST_F(ShardReplicaTest, CollectionsFollowTheMetadata) {
  ASSERT_NO_FATAL_FAILURE(StartReplica());
  EXPECT_TRUE(replica_->Collections().empty());
  CreateCollection("alpha", 2);
  CreateCollection("solo", 1);  // no shard 1: not this replica's
  ASSERT_TRUE(WaitFor("alpha", [](const ReplicaCollection&) {
                return true;
              }).has_value());
  EXPECT_TRUE(LocalHas("alpha"));
  const uint64_t last =
      Publish("alpha", {v1::ShardWriteBatch::MODE_INSERT, {1, 2}, 0});
  ASSERT_TRUE(WaitForApplied("alpha", last).has_value());
  ExpectRows("alpha");
  EXPECT_FALSE(LocalHas("solo"));

  ASSERT_TRUE(metadata_->DeleteCollection("alpha").ok());
  const absl::Time deadline = absl::Now() + kDeadline;
  while (LocalHas("alpha") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE(LocalHas("alpha"));
  EXPECT_TRUE(replica_->Collections().empty());

  // A collection dropped from the metadata while the replica was down is
  // dropped locally when it starts again.
  CreateCollection("beta", 3);
  ASSERT_TRUE(WaitFor("beta", [](const ReplicaCollection&) {
                return true;
              }).has_value());
  replica_.reset();
  ASSERT_TRUE(metadata_->DeleteCollection("beta").ok());
  ASSERT_NO_FATAL_FAILURE(StartReplica());
  EXPECT_FALSE(LocalHas("beta"));
}

}  // namespace
}  // namespace peakknn
