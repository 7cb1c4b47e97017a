// DurableCollection: write validation against queued batches, owned writes,
// deletes, recovery from log and checkpoint, torn and corrupt logs.
#include "store/durable_collection.h"

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "store/data_dir.h"
#include "store/wal_format.h"
#include "tests/store_test_util.h"

namespace peakknn {
namespace {

using testing::IdRange;
using testing::QuietOptions;
using testing::StoreTempDir;
using testing::VersionedContents;
using testing::VersionedRows;
using testing::VersionedSchema;

TEST(DurableCollectionTest, InsertValidationSeesQueuedBatches) {
  const std::string dir = StoreTempDir("store") + "/c";
  auto c = *DurableCollection::Create(dir, VersionedSchema(),
                                      Durability::kFsync, QuietOptions());
  const auto ids = IdRange(0, 5);
  ASSERT_TRUE(c->Write(WriteMode::kInsert, ids, VersionedRows(ids)).ok());
  auto dup =
      c->Write(WriteMode::kInsert, IdRange(4, 6), VersionedRows(IdRange(4, 6)));
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(dup.status().message().find("id 4"), std::string::npos);
  // A batch is atomic: id 5 was not written either.
  EXPECT_FALSE(c->collection().Get(IdRange(5, 6))[0].has_value());
  const std::vector<float> nan = {1, NAN, 0, 0};
  const uint64_t id9 = 9;
  EXPECT_EQ(c->Write(WriteMode::kInsert, {&id9, 1}, nan).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Delete then insert of the same id, queued back to back, both apply.
  std::atomic<int> done{0};
  c->DeleteAsync(IdRange(0, 1), Durability::kDefault,
                 [&](absl::StatusOr<WriteAck> a) {
                   EXPECT_TRUE(a.ok());
                   ++done;
                 });
  c->WriteAsync(WriteMode::kInsert, IdRange(0, 1),
                VersionedRows(IdRange(0, 1), 7), Durability::kDefault,
                [&](absl::StatusOr<WriteAck> a) {
                  EXPECT_TRUE(a.ok()) << a.status();
                  ++done;
                });
  while (done.load() < 2) std::this_thread::yield();
  EXPECT_EQ(VersionedContents(c->collection(), 10)[0], 7.0f);
}

// WriteAsync with an owner logs and applies the caller's vectors in place
// and lets go of the owner once the batch is done, acknowledged or refused.
TEST(DurableCollectionTest, OwnedWritesAreReadInPlaceAndReleased) {
  const std::string dir = StoreTempDir("store") + "/c";
  std::map<uint64_t, float> want;
  {
    auto c = *DurableCollection::Create(dir, VersionedSchema(),
                                        Durability::kFsync, QuietOptions());
    constexpr int kBatches = 8, kRows = 40;
    std::vector<std::weak_ptr<const std::vector<float>>> owners;
    std::atomic<int> acked{0}, refused{0};
    for (int b = 0; b <= kBatches; ++b) {
      // The last batch repeats batch 0's ids: refused, ALREADY_EXISTS.
      const int first = b == kBatches ? 0 : b * kRows;
      const std::vector<uint64_t> ids = IdRange(first, first + kRows);
      auto rows =
          std::make_shared<const std::vector<float>>(VersionedRows(ids, 3));
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
    want = VersionedContents(c->collection(), 1000);
    ASSERT_EQ(want.size(), static_cast<size_t>(kBatches * kRows));
    EXPECT_EQ(want[kRows + 1], 3.0f);  // the version written
  }
  // The log records hold the same rows.
  auto c = DurableCollection::Open(dir, QuietOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(VersionedContents((*c)->collection(), 1000), want);
}

// A delete logs only the ids that exist, once each: repeated or unknown
// ids cost no log bytes, and a delete of nothing logs nothing.
TEST(DurableCollectionTest, DeletesLogOnlyExistingIdsOnce) {
  const std::string dir = StoreTempDir("store") + "/c";
  std::map<uint64_t, float> want;
  {
    auto c = *DurableCollection::Create(dir, VersionedSchema(),
                                        Durability::kFsync, QuietOptions());
    ASSERT_EQ(c->Write(WriteMode::kInsert, IdRange(0, 10),
                       VersionedRows(IdRange(0, 10)))
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
    EXPECT_EQ(c->Write(WriteMode::kInsert, IdRange(20, 21),
                       VersionedRows(IdRange(20, 21)))
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
    c->WriteAsync(WriteMode::kInsert, IdRange(30, 34),
                  VersionedRows(IdRange(30, 34)), Durability::kDefault,
                  keep(0));
    c->DeleteAsync(IdRange(30, 34), Durability::kDefault, keep(1));
    c->DeleteAsync(IdRange(30, 34), Durability::kDefault, keep(2));
    while (done.load() < 3) std::this_thread::yield();
    for (const auto& a : acks) ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(acks[1]->rows, 4);
    EXPECT_EQ(acks[1]->sequence, 5u);
    EXPECT_EQ(acks[2]->rows, 0);
    EXPECT_EQ(acks[2]->sequence, 5u);

    // A delete of nothing acknowledged with fsync waits until what it saw
    // is on disk, even when that was written with durability none.
    ASSERT_TRUE(c->Write(WriteMode::kInsert, IdRange(40, 41),
                         VersionedRows(IdRange(40, 41)), Durability::kNone)
                    .ok());
    ack = c->Delete(unknown, Durability::kFsync);
    ASSERT_TRUE(ack.ok()) << ack.status();
    EXPECT_EQ(ack->sequence, 6u);
    EXPECT_EQ(ack->durability, Durability::kFsync);
    EXPECT_GE(c->durable_sequence(), 6u);
    want = VersionedContents(c->collection(), 50);
  }
  auto c = DurableCollection::Open(dir, QuietOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->recovery_report().replayed_records, 6);
  EXPECT_EQ(VersionedContents((*c)->collection(), 50), want);
  EXPECT_EQ(want.size(), 10u - 2 + 1 + 1);
}

TEST(DurableCollectionTest, RecoversFromLogAndCheckpoint) {
  const std::string dir = StoreTempDir("store") + "/c";
  std::map<uint64_t, float> want;
  {
    auto c = *DurableCollection::Create(dir, VersionedSchema(),
                                        Durability::kFsync, QuietOptions());
    ASSERT_TRUE(c->Write(WriteMode::kInsert, IdRange(0, 100),
                         VersionedRows(IdRange(0, 100)))
                    .ok());
    ASSERT_TRUE(c->Write(WriteMode::kUpsert, IdRange(90, 110),
                         VersionedRows(IdRange(90, 110), 1))
                    .ok());
    ASSERT_EQ(c->Delete(IdRange(0, 10))->rows, 10);
    want = VersionedContents(c->collection(), 200);
    // Destroyed without a checkpoint: recovery must replay the log.
  }
  {
    auto c = DurableCollection::Open(dir, QuietOptions());
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ((*c)->recovery_report().replayed_records, 3);
    EXPECT_EQ(VersionedContents((*c)->collection(), 200), want);
    ASSERT_TRUE((*c)->Checkpoint().ok());
    ASSERT_TRUE((*c)->Delete(IdRange(50, 60)).ok());
    for (uint64_t i = 50; i < 60; ++i) want.erase(i);
  }
  auto c = DurableCollection::Open(dir, QuietOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->recovery_report().checkpoint_rows, 100);
  EXPECT_EQ((*c)->recovery_report().replayed_records, 1);
  EXPECT_EQ(VersionedContents((*c)->collection(), 200), want);
  // Sequences continue after recovery.
  auto ack = (*c)->Delete(IdRange(60, 61));
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
  const std::string dir = StoreTempDir("store") + "/c";
  {
    auto c = *DurableCollection::Create(dir, VersionedSchema(),
                                        Durability::kFsync, QuietOptions());
    ASSERT_TRUE(c->Write(WriteMode::kInsert, IdRange(0, 8),
                         VersionedRows(IdRange(0, 8)))
                    .ok());
    ASSERT_TRUE(c->Write(WriteMode::kInsert, IdRange(8, 9),
                         VersionedRows(IdRange(8, 9)))
                    .ok());
  }
  // A crash in the middle of appending the second record.
  const std::string segment = LastSegment(dir);
  const uint64_t size = *Env::Default()->GetFileSize(segment);
  ASSERT_TRUE(Env::Default()->TruncateFile(segment, size - 7).ok());
  std::vector<std::string> lines;
  DurableCollectionOptions options = QuietOptions();
  options.log = [&](std::string_view l) { lines.emplace_back(l); };
  auto c = DurableCollection::Open(dir, options);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_GT((*c)->recovery_report().truncated_bytes, 0);
  EXPECT_EQ(VersionedContents((*c)->collection(), 20).size(), 8u);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines[0].find("torn"), std::string::npos) << lines[0];
}

TEST(DurableCollectionTest, MidLogCorruptionStopsStartupUnlessTruncating) {
  const std::string dir = StoreTempDir("store") + "/c";
  {
    auto c = *DurableCollection::Create(dir, VersionedSchema(),
                                        Durability::kFsync, QuietOptions());
    for (uint64_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(c->Write(WriteMode::kInsert, IdRange(i * 4, i * 4 + 4),
                           VersionedRows(IdRange(i * 4, i * 4 + 4)))
                      .ok());
    }
  }
  const std::string segment = LastSegment(dir);
  std::string data = *ReadFileToString(Env::Default(), segment);
  const size_t record = data.size() / 3;
  data[record + kWalHeaderBytes + 20] ^= 0x10;  // second record's payload
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), dir, segment, data).ok());

  auto failed = DurableCollection::Open(dir, QuietOptions());
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(failed.status().message().find(segment), std::string::npos)
      << failed.status();
  EXPECT_NE(failed.status().message().find("offset " + std::to_string(record)),
            std::string::npos)
      << failed.status();

  DurableCollectionOptions options = QuietOptions();
  options.truncate_corrupt_wal = true;
  auto c = DurableCollection::Open(dir, options);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(VersionedContents((*c)->collection(), 20).size(), 4u);
}

}  // namespace
}  // namespace peakknn
