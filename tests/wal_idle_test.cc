// Idle collections hold no file descriptor and no thread: the log's active
// segment is closed (synced first) and the commit thread ends after
// idle_timeout, and both come back with the next write. Writes on either
// side of an idle spell, a failed append after a reopen and a checkpoint
// while idle all recover bit for bit. Meaningful under ThreadSanitizer too.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/thread_pool.h"
#include "gtest/gtest.h"
#include "store/collection_manager.h"
#include "store/durable_collection.h"
#include "store/fault_injection_env.h"
#include "tests/proc_stats.h"
#include "tests/store_test_util.h"

namespace peakknn {
namespace {

using testing::CountOpenFiles;
using testing::CountThreads;
using testing::WaitFor;

constexpr int kDim = 4;
constexpr absl::Duration kIdle = absl::Milliseconds(50);
// How long a test waits for the idle state before it fails: far past kIdle,
// for slow (sanitizer) builds.
constexpr absl::Duration kPatience = absl::Seconds(10);

std::string TempDir() { return testing::StoreTempDir("idle"); }

CollectionSchema Schema(const std::string& name) {
  return testing::SmallSchema(name, kDim);
}

DurableCollectionOptions Options(Env* env = nullptr) {
  DurableCollectionOptions o = testing::QuietOptions(env);
  o.idle_timeout = kIdle;
  return o;
}

// Rows that no formula reproduces by accident: every float bit pattern
// matters when checking recovery.
std::vector<float> Rows(size_t n, uint32_t seed) {
  std::vector<float> rows(n * kDim);
  uint32_t x = seed * 2654435761u + 1;
  for (float& v : rows) {
    x = x * 1664525u + 1013904223u;
    v = static_cast<float>(static_cast<int32_t>(x)) / 3.0e7f;
  }
  return rows;
}

std::vector<uint64_t> Ids(uint64_t first, size_t n) {
  std::vector<uint64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = first + i;
  return ids;
}

// Expects every id of `ids` stored with exactly (bit for bit) its row of
// `rows`.
void ExpectRows(const Collection& c, const std::vector<uint64_t>& ids,
                const std::vector<float>& rows) {
  const auto got = c.Get(ids);
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(got[i].has_value()) << "id " << ids[i] << " missing";
    ASSERT_EQ(got[i]->size(), static_cast<size_t>(kDim));
    EXPECT_EQ(std::memcmp(got[i]->data(), &rows[i * kDim], kDim * 4), 0)
        << "id " << ids[i];
  }
}

int WalSegments(const std::string& dir) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    n += entry.path().filename().string().starts_with("wal-");
  }
  return n;
}

class WalIdleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = TempDir();
    // The search pool's workers, started once per process, are not the
    // collections' threads: start them before any count.
    ThreadPool::Default();
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Waits until nothing under `dir` is open and the thread count is back
  // to `threads`.
  static bool Idle(const std::string& dir, int threads) {
    return WaitFor(
        [&] {
          return CountOpenFiles(0, dir) == 0 && CountThreads() <= threads;
        },
        kPatience);
  }

  std::string root_;
};

TEST_F(WalIdleTest, IdleCollectionHoldsNoFileOrThreadAndReopensAtTheEnd) {
  const std::string dir = root_ + "/c";
  const int threads = CountThreads();
  auto c = DurableCollection::Create(dir, Schema("c"), Durability::kFsync,
                                     Options());
  ASSERT_TRUE(c.ok()) << c.status();
  // Created and recovered, never written: nothing held.
  EXPECT_EQ(CountOpenFiles(0, dir), 0);
  EXPECT_EQ(CountThreads(), threads);

  const auto ids_a = Ids(0, 10), ids_b = Ids(100, 7);
  const auto rows_a = Rows(10, 1), rows_b = Rows(7, 2);
  ASSERT_TRUE((*c)->Write(WriteMode::kInsert, ids_a, rows_a).ok());
  ASSERT_TRUE(Idle(dir, threads))
      << CountOpenFiles(0, dir) << " files, " << CountThreads() << " threads";
  // After the idle spell: the same segment, reopened at its end.
  ASSERT_TRUE((*c)->Write(WriteMode::kInsert, ids_b, rows_b).ok());
  ASSERT_TRUE(Idle(dir, threads));
  EXPECT_EQ((*c)->durable_sequence(), 2u);
  ASSERT_TRUE((*c)->Close(/*checkpoint=*/false).ok());
  c->reset();

  EXPECT_EQ(WalSegments(dir), 1);
  auto reopened = DurableCollection::Open(dir, Options());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->recovery_report().replayed_records, 2);
  EXPECT_EQ((*reopened)->recovery_report().truncated_bytes, 0);
  ExpectRows((*reopened)->collection(), ids_a, rows_a);
  ExpectRows((*reopened)->collection(), ids_b, rows_b);
}

TEST_F(WalIdleTest, IdleSyncsWritesAcknowledgedWithoutFsync) {
  const std::string dir = root_ + "/c";
  const int threads = CountThreads();
  auto c =
      DurableCollection::Create(dir, Schema("c"), Durability::kNone, Options());
  ASSERT_TRUE(c.ok()) << c.status();
  auto ack = (*c)->Write(WriteMode::kInsert, Ids(0, 3), Rows(3, 3));
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->durability, Durability::kNone);
  // Closing the idle file fsyncs it first: the write becomes durable.
  ASSERT_TRUE(Idle(dir, threads));
  EXPECT_EQ((*c)->durable_sequence(), ack->sequence);
}

TEST_F(WalIdleTest, FailedAppendAfterReopenIsRolledBack) {
  const std::string dir = root_ + "/c";
  const int threads = CountThreads();
  FaultInjectionEnv env(Env::Default());
  auto c = DurableCollection::Create(dir, Schema("c"), Durability::kFsync,
                                     Options(&env));
  ASSERT_TRUE(c.ok()) << c.status();
  const auto rows_a = Rows(4, 4), rows_b = Rows(4, 5), rows_c = Rows(4, 6);
  ASSERT_TRUE((*c)->Write(WriteMode::kInsert, Ids(0, 4), rows_a).ok());
  ASSERT_TRUE(Idle(dir, threads));
  // The reopened segment takes half of B, fails, and is cut back.
  env.InjectShortWrite();
  EXPECT_FALSE((*c)->Write(WriteMode::kInsert, Ids(10, 4), rows_b).ok());
  EXPECT_EQ(env.faults_fired(), 1);
  ASSERT_TRUE((*c)->Write(WriteMode::kInsert, Ids(20, 4), rows_c).ok());
  ASSERT_TRUE(Idle(dir, threads));
  ASSERT_TRUE((*c)->Close(/*checkpoint=*/false).ok());
  c->reset();

  auto reopened = DurableCollection::Open(dir, Options());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->recovery_report().truncated_bytes, 0);
  ExpectRows((*reopened)->collection(), Ids(0, 4), rows_a);
  ExpectRows((*reopened)->collection(), Ids(20, 4), rows_c);
  for (const auto& row : (*reopened)->collection().Get(Ids(10, 4))) {
    EXPECT_FALSE(row.has_value());
  }
}

TEST_F(WalIdleTest, CheckpointWhileIdleLeavesTheNewSegmentClosed) {
  const std::string dir = root_ + "/c";
  const int threads = CountThreads();
  auto c = DurableCollection::Create(dir, Schema("c"), Durability::kFsync,
                                     Options());
  ASSERT_TRUE(c.ok()) << c.status();
  const auto rows_a = Rows(5, 7), rows_b = Rows(5, 8);
  ASSERT_TRUE((*c)->Write(WriteMode::kInsert, Ids(0, 5), rows_a).ok());
  ASSERT_TRUE(Idle(dir, threads));
  // Rotates to a new segment (created, then closed again) and retires the
  // old one.
  ASSERT_TRUE((*c)->Checkpoint().ok());
  EXPECT_EQ(CountOpenFiles(0, dir), 0);
  EXPECT_EQ(WalSegments(dir), 1);
  ASSERT_TRUE((*c)->Write(WriteMode::kInsert, Ids(50, 5), rows_b).ok());
  ASSERT_TRUE(Idle(dir, threads));
  ASSERT_TRUE((*c)->Close(/*checkpoint=*/false).ok());
  c->reset();

  auto reopened = DurableCollection::Open(dir, Options());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->recovery_report().checkpoint_rows, 5);
  EXPECT_EQ((*reopened)->recovery_report().replayed_records, 1);
  ExpectRows((*reopened)->collection(), Ids(0, 5), rows_a);
  ExpectRows((*reopened)->collection(), Ids(50, 5), rows_b);
}

// The store's whole cost per idle collection: no thread, no file.
TEST_F(WalIdleTest, ThreadsAndFilesDoNotGrowWithIdleCollections) {
  ManagerOptions options;
  options.data_dir = root_ + "/data";
  options.maintenance_interval = absl::ZeroDuration();
  options.collection_idle_timeout = kIdle;
  options.log = [](std::string_view) {};
  auto store = CollectionManager::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  const int none = CountThreads();
  const std::vector<float> query = Rows(1, 9);
  SearchParams params;
  params.k = 1;
  constexpr int kCollections = 40;
  for (int i = 0; i < kCollections; ++i) {
    const std::string name = absl::StrCat("c", i);
    ASSERT_TRUE(
        (*store)->CreateCollection(Schema(name), Durability::kFsync).ok());
    ASSERT_TRUE((*store)->Insert(name, Ids(0, 2), Rows(2, i)).ok());
    ASSERT_TRUE((*store)->Search(name, query, params).ok());
  }
  EXPECT_TRUE(Idle(options.data_dir, none))
      << kCollections << " idle collections hold "
      << CountOpenFiles(0, options.data_dir) << " files and "
      << CountThreads() - none << " threads";
}

}  // namespace
}  // namespace peakknn
