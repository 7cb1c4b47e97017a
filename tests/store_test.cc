// The durable store: named collections, recovery, injected disk faults,
// compaction under searches, and writers + searches + maintenance together
// (meaningful under ThreadSanitizer: PEAKKNN_SANITIZE=thread).
#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "store/collection_manager.h"
#include "store/data_dir.h"
#include "store/durable_collection.h"
#include "store/fault_injection_env.h"
#include "store/store_log.h"
#include "store/wal_format.h"
#include "tests/store_test_util.h"

namespace peakknn {
namespace {

constexpr int kDim = 4;

std::string TempDir() { return testing::StoreTempDir("store"); }

std::vector<float> Vec(uint64_t id, float version = 0) {
  return {static_cast<float>(id), version, 1.0f, -0.5f * id};
}

std::vector<float> Vecs(const std::vector<uint64_t>& ids, float version = 0) {
  std::vector<float> out;
  for (uint64_t id : ids) {
    const auto v = Vec(id, version);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

constexpr auto& Range = testing::IdRange;

CollectionSchema Schema(const std::string& name = "vecs") {
  return testing::SmallSchema(name, kDim);
}

DurableCollectionOptions Options(Env* env = nullptr) {
  return testing::QuietOptions(env);
}

// id -> version for every live row; expects each vector to be exactly Vec.
std::map<uint64_t, float> Contents(const Collection& c, uint64_t max_id) {
  std::map<uint64_t, float> out;
  const auto ids = Range(0, max_id);
  const auto rows = c.Get(ids);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!rows[i]) continue;
    EXPECT_EQ(*rows[i], Vec(ids[i], (*rows[i])[1])) << "id " << ids[i];
    out[ids[i]] = (*rows[i])[1];
  }
  return out;
}

// The names ListCollections returns, in its order.
std::vector<std::string> Names(const CollectionManager& store) {
  const absl::StatusOr<std::vector<CollectionInfo>> infos =
      store.ListCollections();
  EXPECT_TRUE(infos.ok()) << infos.status();
  std::vector<std::string> names;
  if (!infos.ok()) return names;
  for (const CollectionInfo& info : *infos) names.push_back(info.schema.name);
  return names;
}

TEST(ManagerTest, CreateListDescribeDrop) {
  ManagerOptions options;
  options.data_dir = TempDir();
  options.log = [](std::string_view) {};
  auto store = *CollectionManager::Open(options);
  ASSERT_TRUE(store->CreateCollection(Schema("a"), Durability::kDefault).ok());
  ASSERT_TRUE(store->CreateCollection(Schema("b"), Durability::kNone).ok());
  EXPECT_EQ(store->CreateCollection(Schema("a"), Durability::kDefault).code(),
            absl::StatusCode::kAlreadyExists);
  const absl::Status bad_name =
      store->CreateCollection(Schema("no/slash"), Durability::kDefault);
  EXPECT_EQ(bad_name.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_name.message().find("name"), std::string::npos) << bad_name;
  EXPECT_EQ(Names(*store), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(store->DescribeCollection("zzz").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Insert("zzz", {}, {}).status().code(),
            absl::StatusCode::kNotFound);

  const auto ids = Range(0, 10);
  auto ack = store->Insert("b", ids, Vecs(ids));
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->durability, Durability::kNone);  // the collection's default
  ack = store->Insert("a", ids, Vecs(ids));
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->durability, Durability::kFsync);
  EXPECT_EQ(ack->sequence, 1u);
  auto info = store->DescribeCollection("a");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->live_rows, 10);
  EXPECT_EQ(info->durable_sequence, 1u);
  EXPECT_GT(info->disk_bytes, 0);
  EXPECT_GT(info->memory_bytes, 0);

  ASSERT_TRUE(store->DropCollection("a").ok());
  EXPECT_EQ(store->DropCollection("a").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Names(*store), (std::vector<std::string>{"b"}));
  ASSERT_TRUE(store->CreateCollection(Schema("a"), Durability::kDefault).ok());
  EXPECT_EQ(store->DescribeCollection("a")->live_rows, 0);
  ASSERT_TRUE(store->Close().ok());

  // Clean shutdown checkpointed; reopening finds the same collections.
  auto again = *CollectionManager::Open(options);
  EXPECT_EQ(Names(*again), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(again->DescribeCollection("b")->live_rows, 10);
}

TEST(ManagerTest, RecoveringManagerRefusesCalls) {
  ManagerOptions options;
  options.data_dir = TempDir();
  auto store = CollectionManager::Create(options);
  EXPECT_EQ(store->Ready().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store->DescribeCollection("x").status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(store->ListCollections().status().code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE(store->Recover().ok());
  EXPECT_TRUE(store->Ready().ok());
}

// A create that fails after its directory was renamed into place (here:
// its first log segment cannot be created) leaves nothing behind: not for a
// retry, not for a restart.
TEST(ManagerTest, FailedCreateLeavesNothingBehind) {
  FaultInjectionEnv env(Env::Default());
  ManagerOptions options;
  options.data_dir = TempDir();
  options.env = &env;
  options.log = [](std::string_view) {};
  {
    auto store = *CollectionManager::Open(options);
    env.InjectCreateFailure("wal-");
    const absl::Status failed =
        store->CreateCollection(Schema("a"), Durability::kDefault);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(env.faults_fired(), 1);
    EXPECT_NE(failed.message().find("injected"), std::string::npos) << failed;
    EXPECT_TRUE(Names(*store).empty());
    EXPECT_FALSE(env.FileExists(JoinPath(options.data_dir, "a")));
    EXPECT_TRUE((*env.GetChildren(options.data_dir)).empty());
  }
  {
    auto store = *CollectionManager::Open(options);
    EXPECT_TRUE(Names(*store).empty());
    ASSERT_TRUE(
        store->CreateCollection(Schema("a"), Durability::kDefault).ok());
    ASSERT_TRUE(store->Insert("a", Range(0, 3), Vecs(Range(0, 3))).ok());
  }
  auto store = *CollectionManager::Open(options);
  EXPECT_EQ(Names(*store), (std::vector<std::string>{"a"}));
  EXPECT_EQ(store->DescribeCollection("a")->live_rows, 3);
}

TEST(DurableCollectionTest, InsertValidationSeesQueuedBatches) {
  const std::string dir = TempDir() + "/c";
  auto c =
      *DurableCollection::Create(dir, Schema(), Durability::kFsync, Options());
  const auto ids = Range(0, 5);
  ASSERT_TRUE(c->Write(WriteMode::kInsert, ids, Vecs(ids)).ok());
  auto dup = c->Write(WriteMode::kInsert, Range(4, 6), Vecs(Range(4, 6)));
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(dup.status().message().find("id 4"), std::string::npos);
  // A batch is atomic: id 5 was not written either.
  EXPECT_FALSE(c->collection().Get(Range(5, 6))[0].has_value());
  const std::vector<float> nan = {1, NAN, 0, 0};
  const uint64_t id9 = 9;
  EXPECT_EQ(c->Write(WriteMode::kInsert, {&id9, 1}, nan).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Delete then insert of the same id, queued back to back, both apply.
  std::atomic<int> done{0};
  c->DeleteAsync(Range(0, 1), Durability::kDefault,
                 [&](absl::StatusOr<WriteAck> a) {
                   EXPECT_TRUE(a.ok());
                   ++done;
                 });
  c->WriteAsync(WriteMode::kInsert, Range(0, 1), Vecs(Range(0, 1), 7),
                Durability::kDefault, [&](absl::StatusOr<WriteAck> a) {
                  EXPECT_TRUE(a.ok()) << a.status();
                  ++done;
                });
  while (done.load() < 2) std::this_thread::yield();
  EXPECT_EQ(Contents(c->collection(), 10)[0], 7.0f);
}

// WriteAsync with an owner logs and applies the caller's vectors in place
// and lets go of the owner once the batch is done, acknowledged or refused.
TEST(DurableCollectionTest, OwnedWritesAreReadInPlaceAndReleased) {
  const std::string dir = TempDir() + "/c";
  std::map<uint64_t, float> want;
  {
    auto c = *DurableCollection::Create(dir, Schema(), Durability::kFsync,
                                        Options());
    constexpr int kBatches = 8, kRows = 40;
    std::vector<std::weak_ptr<const std::vector<float>>> owners;
    std::atomic<int> acked{0}, refused{0};
    for (int b = 0; b <= kBatches; ++b) {
      // The last batch repeats batch 0's ids: refused, ALREADY_EXISTS.
      const int first = b == kBatches ? 0 : b * kRows;
      const std::vector<uint64_t> ids = Range(first, first + kRows);
      auto rows = std::make_shared<const std::vector<float>>(Vecs(ids, 3));
      owners.push_back(rows);
      c->WriteAsync(
          WriteMode::kInsert, ids, *rows, Durability::kDefault,
          [&](absl::StatusOr<WriteAck> a) { ++(a.ok() ? acked : refused); },
          rows);
    }  // the store holds the only references now
    while (acked.load() + refused.load() < kBatches + 1) {
      std::this_thread::yield();
    }
    EXPECT_EQ(acked.load(), kBatches);
    EXPECT_EQ(refused.load(), 1);
    ASSERT_TRUE(c->Close(/*checkpoint=*/false).ok());  // drains the queue
    for (const auto& owner : owners) EXPECT_TRUE(owner.expired());
    want = Contents(c->collection(), 1000);
    ASSERT_EQ(want.size(), static_cast<size_t>(kBatches * kRows));
    EXPECT_EQ(want[kRows + 1], 3.0f);  // the version written
  }
  // The log records hold the same rows.
  auto c = DurableCollection::Open(dir, Options());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Contents((*c)->collection(), 1000), want);
}

// A delete logs only the ids that exist, once each: repeated or unknown
// ids cost no log bytes, and a delete of nothing logs nothing.
TEST(DurableCollectionTest, DeletesLogOnlyExistingIdsOnce) {
  const std::string dir = TempDir() + "/c";
  std::map<uint64_t, float> want;
  {
    auto c = *DurableCollection::Create(dir, Schema(), Durability::kFsync,
                                        Options());
    ASSERT_EQ(c->Write(WriteMode::kInsert, Range(0, 10), Vecs(Range(0, 10)))
                  ->sequence,
              1u);
    const int64_t logged = c->disk_bytes();
    // 1 MiB of one unknown id: nothing deleted, nothing logged, and the ack
    // carries the sequence of the last batch logged before it.
    const std::vector<uint64_t> unknown(131072, 777);
    auto ack = c->Delete(unknown);
    ASSERT_TRUE(ack.ok()) << ack.status();
    EXPECT_EQ(ack->rows, 0);
    EXPECT_EQ(ack->sequence, 1u);
    EXPECT_EQ(c->disk_bytes(), logged);
    // Two known ids, repeated among the unknown one: one record of 2 ids.
    std::vector<uint64_t> mixed = unknown;
    mixed[5] = mixed[100] = 3;
    mixed[7] = 4;
    ack = c->Delete(mixed);
    ASSERT_TRUE(ack.ok()) << ack.status();
    EXPECT_EQ(ack->rows, 2);
    EXPECT_EQ(ack->sequence, 2u);
    EXPECT_EQ(c->disk_bytes(),
              logged + static_cast<int64_t>(kWalHeaderBytes + 4 + 2 * 8));
    // Sequence numbers stay dense.
    EXPECT_EQ(c->Write(WriteMode::kInsert, Range(20, 21), Vecs(Range(20, 21)))
                  ->sequence,
              3u);

    // Existence counts batches logged but not yet applied: an insert and a
    // delete of its ids queued back to back, then the same delete again.
    std::atomic<int> done{0};
    std::vector<absl::StatusOr<WriteAck>> acks(3);
    const auto keep = [&](int i) {
      return [&, i](absl::StatusOr<WriteAck> a) {
        acks[i] = std::move(a);
        ++done;
      };
    };
    c->WriteAsync(WriteMode::kInsert, Range(30, 34), Vecs(Range(30, 34)),
                  Durability::kDefault, keep(0));
    c->DeleteAsync(Range(30, 34), Durability::kDefault, keep(1));
    c->DeleteAsync(Range(30, 34), Durability::kDefault, keep(2));
    while (done.load() < 3) std::this_thread::yield();
    for (const auto& a : acks) ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(acks[1]->rows, 4);
    EXPECT_EQ(acks[1]->sequence, 5u);
    EXPECT_EQ(acks[2]->rows, 0);
    EXPECT_EQ(acks[2]->sequence, 5u);

    // A delete of nothing acknowledged with fsync waits until what it saw
    // is on disk, even when that was written with durability none.
    ASSERT_TRUE(c->Write(WriteMode::kInsert, Range(40, 41), Vecs(Range(40, 41)),
                         Durability::kNone)
                    .ok());
    ack = c->Delete(unknown, Durability::kFsync);
    ASSERT_TRUE(ack.ok()) << ack.status();
    EXPECT_EQ(ack->sequence, 6u);
    EXPECT_EQ(ack->durability, Durability::kFsync);
    EXPECT_GE(c->durable_sequence(), 6u);
    want = Contents(c->collection(), 50);
  }
  auto c = DurableCollection::Open(dir, Options());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->recovery_report().replayed_records, 6);
  EXPECT_EQ(Contents((*c)->collection(), 50), want);
  EXPECT_EQ(want.size(), 10u - 2 + 1 + 1);
}

TEST(DurableCollectionTest, RecoversFromLogAndCheckpoint) {
  const std::string dir = TempDir() + "/c";
  std::map<uint64_t, float> want;
  {
    auto c = *DurableCollection::Create(dir, Schema(), Durability::kFsync,
                                        Options());
    ASSERT_TRUE(
        c->Write(WriteMode::kInsert, Range(0, 100), Vecs(Range(0, 100))).ok());
    ASSERT_TRUE(
        c->Write(WriteMode::kUpsert, Range(90, 110), Vecs(Range(90, 110), 1))
            .ok());
    ASSERT_EQ(c->Delete(Range(0, 10))->rows, 10);
    want = Contents(c->collection(), 200);
    // Destroyed without a checkpoint: recovery must replay the log.
  }
  {
    auto c = DurableCollection::Open(dir, Options());
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ((*c)->recovery_report().replayed_records, 3);
    EXPECT_EQ(Contents((*c)->collection(), 200), want);
    ASSERT_TRUE((*c)->Checkpoint().ok());
    ASSERT_TRUE((*c)->Delete(Range(50, 60)).ok());
    for (uint64_t i = 50; i < 60; ++i) want.erase(i);
  }
  auto c = DurableCollection::Open(dir, Options());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->recovery_report().checkpoint_rows, 100);
  EXPECT_EQ((*c)->recovery_report().replayed_records, 1);
  EXPECT_EQ(Contents((*c)->collection(), 200), want);
  // Sequences continue after recovery.
  auto ack = (*c)->Delete(Range(60, 61));
  EXPECT_EQ(ack->sequence, 5u);
}

std::string LastSegment(const std::string& dir) {
  std::string last;
  const auto names = *Env::Default()->GetChildren(dir);
  for (const auto& name : names) {
    if (ParseWalSegmentName(name) && name > last) last = name;
  }
  return JoinPath(dir, last);
}

TEST(DurableCollectionTest, TornTailIsTruncatedAndLogged) {
  const std::string dir = TempDir() + "/c";
  {
    auto c = *DurableCollection::Create(dir, Schema(), Durability::kFsync,
                                        Options());
    ASSERT_TRUE(
        c->Write(WriteMode::kInsert, Range(0, 8), Vecs(Range(0, 8))).ok());
    ASSERT_TRUE(
        c->Write(WriteMode::kInsert, Range(8, 9), Vecs(Range(8, 9))).ok());
  }
  // A crash in the middle of appending the second record.
  const std::string segment = LastSegment(dir);
  const uint64_t size = *Env::Default()->GetFileSize(segment);
  ASSERT_TRUE(Env::Default()->TruncateFile(segment, size - 7).ok());
  std::vector<std::string> lines;
  DurableCollectionOptions options = Options();
  options.log = [&](std::string_view l) { lines.emplace_back(l); };
  auto c = DurableCollection::Open(dir, options);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_GT((*c)->recovery_report().truncated_bytes, 0);
  EXPECT_EQ(Contents((*c)->collection(), 20).size(), 8u);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines[0].find("torn"), std::string::npos) << lines[0];
}

TEST(DurableCollectionTest, MidLogCorruptionStopsStartupUnlessTruncating) {
  const std::string dir = TempDir() + "/c";
  {
    auto c = *DurableCollection::Create(dir, Schema(), Durability::kFsync,
                                        Options());
    for (uint64_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(c->Write(WriteMode::kInsert, Range(i * 4, i * 4 + 4),
                           Vecs(Range(i * 4, i * 4 + 4)))
                      .ok());
    }
  }
  const std::string segment = LastSegment(dir);
  std::string data = *ReadFileToString(Env::Default(), segment);
  const size_t record = data.size() / 3;
  data[record + kWalHeaderBytes + 20] ^= 0x10;  // second record's payload
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), dir, segment, data).ok());

  auto failed = DurableCollection::Open(dir, Options());
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(failed.status().message().find(segment), std::string::npos)
      << failed.status();
  EXPECT_NE(failed.status().message().find("offset " + std::to_string(record)),
            std::string::npos)
      << failed.status();

  DurableCollectionOptions options = Options();
  options.truncate_corrupt_wal = true;
  auto c = DurableCollection::Open(dir, options);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Contents((*c)->collection(), 20).size(), 4u);
}

enum class Fault { kSync, kShortWrite, kNoSpace };

class FaultTest : public ::testing::TestWithParam<Fault> {};

TEST_P(FaultTest, FailedWriteIsReportedAndAcknowledgedDataSurvives) {
  FaultInjectionEnv env(Env::Default());
  const std::string dir = TempDir() + "/c";
  std::map<uint64_t, float> want;
  {
    auto c = *DurableCollection::Create(dir, Schema(), Durability::kFsync,
                                        Options(&env));
    ASSERT_TRUE(
        c->Write(WriteMode::kInsert, Range(0, 10), Vecs(Range(0, 10))).ok());
    switch (GetParam()) {
      case Fault::kSync:
        env.InjectSyncFailure();
        break;
      case Fault::kShortWrite:
        env.InjectShortWrite();
        break;
      case Fault::kNoSpace:
        env.InjectNoSpace();
        break;
    }
    auto failed =
        c->Write(WriteMode::kInsert, Range(10, 20), Vecs(Range(10, 20)));
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(env.faults_fired(), 1);
    EXPECT_NE(failed.status().message().find("injected"), std::string::npos)
        << failed.status();
    EXPECT_NE(failed.status().message().find("wal-"), std::string::npos)
        << failed.status();
    if (GetParam() == Fault::kNoSpace) {
      EXPECT_EQ(failed.status().code(), absl::StatusCode::kResourceExhausted);
    }
    // Reads keep working and see only acknowledged data.
    EXPECT_EQ(Contents(c->collection(), 30).size(), 10u);
    const std::vector<float> q = Vec(3);
    SearchParams params;
    params.k = 1;
    params.recall_target = 1;
    auto found = c->collection().Search(q, params);
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(found->ids[0], 3u);
    // The store recovers: the same ids can be written now. After a failed
    // fsync only after a restart (tests/power_loss_test.cc has why), and
    // the failed batch, never acknowledged, may then be there (whole): it
    // is on this disk, so the ids are upserted.
    const bool fsync_failed = GetParam() == Fault::kSync;
    if (fsync_failed) {
      EXPECT_EQ(c->Write(WriteMode::kInsert, Range(10, 15), Vecs(Range(10, 15)))
                    .status()
                    .code(),
                absl::StatusCode::kUnavailable);
      c.reset();
      c = *DurableCollection::Open(dir, Options(&env));
    }
    ASSERT_TRUE(c->Write(fsync_failed ? WriteMode::kUpsert : WriteMode::kInsert,
                         Range(10, 15), Vecs(Range(10, 15)))
                    .ok());
    want = Contents(c->collection(), 30);
    EXPECT_EQ(want.size(), fsync_failed ? 20u : 15u);
  }
  auto c = DurableCollection::Open(dir, Options());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Contents((*c)->collection(), 30), want);
}

INSTANTIATE_TEST_SUITE_P(Faults, FaultTest,
                         ::testing::Values(Fault::kSync, Fault::kShortWrite,
                                           Fault::kNoSpace),
                         [](const ::testing::TestParamInfo<Fault>& param) {
                           switch (param.param) {
                             case Fault::kSync:
                               return "FailedFsync";
                             case Fault::kShortWrite:
                               return "ShortWrite";
                             case Fault::kNoSpace:
                               return "NoSpace";
                           }
                           return "Unknown";
                         });

TEST(FaultTest, FailedCheckpointRenameKeepsThePreviousCheckpoint) {
  FaultInjectionEnv env(Env::Default());
  const std::string dir = TempDir() + "/c";
  std::map<uint64_t, float> want;
  {
    auto c = *DurableCollection::Create(dir, Schema(), Durability::kFsync,
                                        Options(&env));
    ASSERT_TRUE(
        c->Write(WriteMode::kInsert, Range(0, 10), Vecs(Range(0, 10))).ok());
    ASSERT_TRUE(c->Checkpoint().ok());
    ASSERT_TRUE(
        c->Write(WriteMode::kInsert, Range(10, 20), Vecs(Range(10, 20))).ok());
    env.InjectRenameFailure();
    const absl::Status s = c->Checkpoint();
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("previous one stays current"), std::string::npos)
        << s;
    EXPECT_NE(s.message().find("injected"), std::string::npos) << s;
    // Writes and reads go on.
    ASSERT_TRUE(
        c->Write(WriteMode::kInsert, Range(20, 25), Vecs(Range(20, 25))).ok());
    want = Contents(c->collection(), 30);
  }
  auto c = DurableCollection::Open(dir, Options());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->recovery_report().checkpoint_rows, 10);
  EXPECT_EQ(Contents((*c)->collection(), 30), want);
}

// A log segment that cannot be created (EMFILE, out of inodes) only delays
// rotation: writes go on in the active segment, later rotations succeed,
// and the failures are logged once a minute, not once per try.
TEST(FaultTest, FailedRotationKeepsTheLogWritable) {
  FaultInjectionEnv env(Env::Default());
  const std::string dir = TempDir() + "/c";
  std::mutex lines_mu;
  std::vector<std::string> lines;
  DurableCollectionOptions options = Options(&env);
  options.log = [&](std::string_view line) {
    std::lock_guard lock(lines_mu);
    lines.emplace_back(line);
  };
  {
    DurableCollectionOptions small = options;
    small.wal_segment_bytes = 1;  // rotate after every group
    auto c =
        *DurableCollection::Create(dir, Schema(), Durability::kFsync, small);
    // Rotations past the size: the first three fail.
    for (int i = 0; i < 3; ++i) env.InjectCreateFailure("wal-");
    for (uint64_t b = 0; b < 5; ++b) {
      const auto ids = Range(b * 10, b * 10 + 10);
      auto ack = c->Write(WriteMode::kInsert, ids, Vecs(ids));
      ASSERT_TRUE(ack.ok()) << "batch " << b << ": " << ack.status();
    }
    EXPECT_EQ(env.faults_fired(), 3);
    std::lock_guard lock(lines_mu);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("could not start segment"), std::string::npos)
        << lines[0];
    EXPECT_NE(lines[0].find("injected"), std::string::npos) << lines[0];
  }
  std::map<uint64_t, float> want;
  {
    auto c = *DurableCollection::Open(dir, options);
    ASSERT_TRUE(c->Write(WriteMode::kInsert, Range(50, 60), Vecs(Range(50, 60)),
                         Durability::kNone)
                    .ok());
    // The rotation before a checkpoint fails: the checkpoint is installed
    // all the same, and writes go on.
    env.InjectCreateFailure("wal-");
    const absl::Status checkpoint = c->Checkpoint();
    ASSERT_TRUE(checkpoint.ok()) << checkpoint;
    EXPECT_EQ(env.faults_fired(), 4);
    ASSERT_TRUE(c->Delete(Range(0, 5)).ok());
    ASSERT_TRUE(
        c->Write(WriteMode::kUpsert, Range(5, 8), Vecs(Range(5, 8), 2)).ok());
    // Once segments can be created again, a checkpoint retires the old one.
    ASSERT_TRUE(c->Checkpoint().ok());
    want = Contents(c->collection(), 100);
  }
  int segments = 0;
  const std::vector<std::string> names = *Env::Default()->GetChildren(dir);
  for (const std::string& name : names) {
    segments += ParseWalSegmentName(name).has_value();
  }
  EXPECT_EQ(segments, 1);  // the active one, empty
  auto c = DurableCollection::Open(dir, Options());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->recovery_report().replayed_records, 0);
  EXPECT_EQ(Contents((*c)->collection(), 100), want);
  EXPECT_EQ(want.size(), 55u);
  EXPECT_EQ(want[6], 2.0f);
}

// Exact top-1 of every live row must be the row itself, before, during and
// after compaction.
TEST(CompactionTest, SearchesStayCorrectDuringAndAfter) {
  const std::string dir = TempDir() + "/c";
  auto c =
      *DurableCollection::Create(dir, Schema(), Durability::kNone, Options());
  const auto ids = Range(0, 640);
  ASSERT_TRUE(c->Write(WriteMode::kInsert, ids, Vecs(ids)).ok());
  std::vector<uint64_t> dead;
  for (uint64_t i = 0; i < 640; i += 3) dead.push_back(i);
  for (uint64_t i = 1; i < 640; i += 3) dead.push_back(i);
  ASSERT_TRUE(c->Delete(dead).ok());
  const int64_t rows_before = c->collection().Stats().rows;

  std::atomic<bool> stop{false};
  std::atomic<int64_t> checked{0};
  std::thread searcher([&] {
    SearchParams params;
    params.k = 1;
    params.recall_target = 1;
    while (!stop.load()) {
      for (uint64_t id = 2; id < 640; id += 3 * 17) {
        auto found = c->collection().Search(Vec(id), params);
        ASSERT_TRUE(found.ok());
        ASSERT_EQ(found->counts[0], 1);
        ASSERT_EQ(found->ids[0], id);
        ++checked;
      }
    }
  });
  const int64_t compacted = c->Compact(0.5);
  while (checked.load() < 50) std::this_thread::yield();
  stop = true;
  searcher.join();
  EXPECT_EQ(compacted, 9);  // full blocks only; the tail block stays
  const CollectionStats stats = c->collection().Stats();
  EXPECT_LT(stats.rows, rows_before);
  EXPECT_EQ(stats.live_rows, 640 - static_cast<int64_t>(dead.size()));
  // Ids moved to new slots are still found by Get, upsert and delete.
  EXPECT_EQ(Contents(c->collection(), 640).size(), stats.live_rows);
  ASSERT_TRUE(
      c->Write(WriteMode::kUpsert, Range(2, 3), Vecs(Range(2, 3), 5)).ok());
  ASSERT_EQ(c->Delete(Range(5, 6))->rows, 1);
  EXPECT_EQ(Contents(c->collection(), 640)[2], 5.0f);
  EXPECT_EQ(Contents(c->collection(), 640).count(5), 0u);
}

TEST(ConcurrencyTest, WritersSearchesCompactionAndCheckpointsTogether) {
  const std::string dir = TempDir() + "/c";
  auto c =
      *DurableCollection::Create(dir, Schema(), Durability::kNone, Options());
  constexpr int kWriters = 2;
  constexpr uint64_t kPerWriter = 400;
  std::atomic<bool> stop{false};
  std::vector<std::map<uint64_t, float>> expected(kWriters);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      const uint64_t base = w * 100000;
      for (uint64_t i = 0; i < kPerWriter; i += 8) {
        const auto ids = Range(base + i, base + i + 8);
        ASSERT_TRUE(c->Write(WriteMode::kInsert, ids, Vecs(ids)).ok());
        for (uint64_t id : ids) expected[w][id] = 0;
        const auto half = Range(base + i, base + i + 4);
        ASSERT_TRUE(c->Delete(half).ok());
        for (uint64_t id : half) expected[w].erase(id);
        const auto up = Range(base + i + 6, base + i + 8);
        ASSERT_TRUE(c->Write(WriteMode::kUpsert, up, Vecs(up, 2)).ok());
        for (uint64_t id : up) expected[w][id] = 2;
      }
    });
  }
  threads.emplace_back([&] {
    SearchParams params;
    params.k = 5;
    while (!stop.load()) {
      auto found = c->collection().Search(Vec(7), params);
      ASSERT_TRUE(found.ok());
    }
  });
  threads.emplace_back([&] {
    while (!stop.load()) {
      c->Compact(0.3);
      ASSERT_TRUE(c->Checkpoint().ok());
    }
  });
  threads[0].join();
  threads[1].join();
  stop = true;
  for (size_t t = 2; t < threads.size(); ++t) threads[t].join();
  std::map<uint64_t, float> want;
  for (const auto& e : expected) want.insert(e.begin(), e.end());
  std::map<uint64_t, float> got;
  for (int w = 0; w < kWriters; ++w) {
    const auto part = Contents(c->collection(), w * 100000 + kPerWriter);
    got.insert(part.begin(), part.end());
  }
  EXPECT_EQ(got, want);
  ASSERT_TRUE(c->Close(true).ok());
  auto reopened = DurableCollection::Open(dir, Options());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  std::map<uint64_t, float> after;
  for (int w = 0; w < kWriters; ++w) {
    const auto part =
        Contents((*reopened)->collection(), w * 100000 + kPerWriter);
    after.insert(part.begin(), part.end());
  }
  EXPECT_EQ(after, want);
}

TEST(LogThrottleTest, OneLinePerIntervalCountingTheRest) {
  std::vector<std::string> lines;
  LogThrottle throttle(absl::Minutes(1),
                       [&](std::string_view l) { lines.emplace_back(l); });
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  throttle.Log("disk full", t0);
  throttle.Log("disk full", t0 + absl::Seconds(1));
  throttle.Log("disk full", t0 + absl::Seconds(59));
  throttle.Log("disk still full", t0 + absl::Seconds(60));
  throttle.Log("disk full", t0 + absl::Seconds(61));
  throttle.Log("ok", t0 + absl::Seconds(200));
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "disk full",
                       "disk still full (2 similar lines held back since the "
                       "last one)",
                       "ok (1 similar lines held back since the last one)"}));
}

}  // namespace
}  // namespace peakknn
