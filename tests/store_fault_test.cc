// The store under injected I/O faults (store/fault_injection_env.h): a failed
// write, checkpoint rename or log rotation is reported, and acknowledged data
// survives.
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "store/data_dir.h"
#include "store/durable_collection.h"
#include "store/fault_injection_env.h"
#include "store/wal_format.h"
#include "tests/store_test_util.h"

namespace peakknn {
namespace {

using testing::IdRange;
using testing::QuietOptions;
using testing::StoreTempDir;
using testing::VersionedContents;
using testing::VersionedRow;
using testing::VersionedRows;
using testing::VersionedSchema;

// Inserts VersionedRows of ids [begin, end) into `c`, failing the test on
// an error.
void InsertRange(DurableCollection* c, uint64_t begin, uint64_t end) {
  const auto ack = c->Write(WriteMode::kInsert, IdRange(begin, end),
                            VersionedRows(IdRange(begin, end)));
  ASSERT_TRUE(ack.ok()) << ack.status();
}

enum class Fault { kSync, kShortWrite, kNoSpace };

class FaultTest : public ::testing::TestWithParam<Fault> {};

TEST_P(FaultTest, FailedWriteIsReportedAndAcknowledgedDataSurvives) {
  FaultInjectionEnv env(Env::Default());
  const std::string dir = StoreTempDir("store") + "/c";
  std::map<uint64_t, float> want;
  {
    auto c = *DurableCollection::Create(dir, VersionedSchema(),
                                        Durability::kFsync, QuietOptions(&env));
    ASSERT_NO_FATAL_FAILURE(InsertRange(c.get(), 0, 10));
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
    auto failed = c->Write(WriteMode::kInsert, IdRange(10, 20),
                           VersionedRows(IdRange(10, 20)));
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
    EXPECT_EQ(VersionedContents(c->collection(), 30).size(), 10u);
    const std::vector<float> q = VersionedRow(3);
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
      EXPECT_EQ(c->Write(WriteMode::kInsert, IdRange(10, 15),
                         VersionedRows(IdRange(10, 15)))
                    .status()
                    .code(),
                absl::StatusCode::kUnavailable);
      c.reset();
      c = *DurableCollection::Open(dir, QuietOptions(&env));
    }
    ASSERT_TRUE(c->Write(fsync_failed ? WriteMode::kUpsert : WriteMode::kInsert,
                         IdRange(10, 15), VersionedRows(IdRange(10, 15)))
                    .ok());
    want = VersionedContents(c->collection(), 30);
    EXPECT_EQ(want.size(), fsync_failed ? 20u : 15u);
  }
  auto c = DurableCollection::Open(dir, QuietOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(VersionedContents((*c)->collection(), 30), want);
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
  const std::string dir = StoreTempDir("store") + "/c";
  std::map<uint64_t, float> want;
  {
    auto c = *DurableCollection::Create(dir, VersionedSchema(),
                                        Durability::kFsync, QuietOptions(&env));
    ASSERT_NO_FATAL_FAILURE(InsertRange(c.get(), 0, 10));
    ASSERT_TRUE(c->Checkpoint().ok());
    ASSERT_NO_FATAL_FAILURE(InsertRange(c.get(), 10, 20));
    env.InjectRenameFailure();
    const absl::Status s = c->Checkpoint();
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("previous one stays current"), std::string::npos)
        << s;
    EXPECT_NE(s.message().find("injected"), std::string::npos) << s;
    // Writes and reads go on.
    ASSERT_NO_FATAL_FAILURE(InsertRange(c.get(), 20, 25));
    want = VersionedContents(c->collection(), 30);
  }
  auto c = DurableCollection::Open(dir, QuietOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->recovery_report().checkpoint_rows, 10);
  EXPECT_EQ(VersionedContents((*c)->collection(), 30), want);
}

// A log segment that cannot be created (EMFILE, out of inodes) only delays
// rotation: writes go on in the active segment, later rotations succeed,
// and the failures are logged once a minute, not once per try.
TEST(FaultTest, FailedRotationKeepsTheLogWritable) {
  FaultInjectionEnv env(Env::Default());
  const std::string dir = StoreTempDir("store") + "/c";
  std::mutex lines_mu;
  std::vector<std::string> lines;
  DurableCollectionOptions options = QuietOptions(&env);
  options.log = [&](std::string_view line) {
    std::lock_guard lock(lines_mu);
    lines.emplace_back(line);
  };
  {
    DurableCollectionOptions small = options;
    small.wal_segment_bytes = 1;  // rotate after every group
    auto c = *DurableCollection::Create(dir, VersionedSchema(),
                                        Durability::kFsync, small);
    // Rotations past the size: the first three fail.
    for (int i = 0; i < 3; ++i) env.InjectCreateFailure("wal-");
    for (uint64_t b = 0; b < 5; ++b) {
      const auto ids = IdRange(b * 10, b * 10 + 10);
      auto ack = c->Write(WriteMode::kInsert, ids, VersionedRows(ids));
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
    ASSERT_TRUE(c->Write(WriteMode::kInsert, IdRange(50, 60),
                         VersionedRows(IdRange(50, 60)), Durability::kNone)
                    .ok());
    // The rotation before a checkpoint fails: the checkpoint is installed
    // all the same, and writes go on.
    env.InjectCreateFailure("wal-");
    const absl::Status checkpoint = c->Checkpoint();
    ASSERT_TRUE(checkpoint.ok()) << checkpoint;
    EXPECT_EQ(env.faults_fired(), 4);
    ASSERT_TRUE(c->Delete(IdRange(0, 5)).ok());
    ASSERT_TRUE(c->Write(WriteMode::kUpsert, IdRange(5, 8),
                         VersionedRows(IdRange(5, 8), 2))
                    .ok());
    // Once segments can be created again, a checkpoint retires the old one.
    ASSERT_TRUE(c->Checkpoint().ok());
    want = VersionedContents(c->collection(), 100);
  }
  int segments = 0;
  const std::vector<std::string> names = *Env::Default()->GetChildren(dir);
  for (const std::string& name : names) {
    segments += ParseWalSegmentName(name).has_value();
  }
  EXPECT_EQ(segments, 1);  // the active one, empty
  auto c = DurableCollection::Open(dir, QuietOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->recovery_report().replayed_records, 0);
  EXPECT_EQ(VersionedContents((*c)->collection(), 100), want);
  EXPECT_EQ(want.size(), 55u);
  EXPECT_EQ(want[6], 2.0f);
}

}  // namespace
}  // namespace peakknn
