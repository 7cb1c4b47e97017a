// The store under concurrency: compaction under searches, writers, searches,
// compaction and checkpoints together, and the log throttle.
#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "store/durable_collection.h"
#include "store/store_log.h"
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

// Exact top-1 of every live row must be the row itself, before, during and
// after compaction.
TEST(CompactionTest, SearchesStayCorrectDuringAndAfter) {
  const std::string dir = StoreTempDir("store") + "/c";
  auto c = *DurableCollection::Create(dir, VersionedSchema(), Durability::kNone,
                                      QuietOptions());
  const auto ids = IdRange(0, 640);
  ASSERT_TRUE(c->Write(WriteMode::kInsert, ids, VersionedRows(ids)).ok());
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
        auto found = c->collection().Search(VersionedRow(id), params);
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
  EXPECT_EQ(VersionedContents(c->collection(), 640).size(), stats.live_rows);
  ASSERT_TRUE(c->Write(WriteMode::kUpsert, IdRange(2, 3),
                       VersionedRows(IdRange(2, 3), 5))
                  .ok());
  ASSERT_EQ(c->Delete(IdRange(5, 6))->rows, 1);
  EXPECT_EQ(VersionedContents(c->collection(), 640)[2], 5.0f);
  EXPECT_EQ(VersionedContents(c->collection(), 640).count(5), 0u);
}

TEST(ConcurrencyTest, WritersSearchesCompactionAndCheckpointsTogether) {
  const std::string dir = StoreTempDir("store") + "/c";
  auto c = *DurableCollection::Create(dir, VersionedSchema(), Durability::kNone,
                                      QuietOptions());
  constexpr int kWriters = 2;
  constexpr uint64_t kPerWriter = 400;
  std::atomic<bool> stop{false};
  std::vector<std::map<uint64_t, float>> expected(kWriters);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      const uint64_t base = w * 100000;
      for (uint64_t i = 0; i < kPerWriter; i += 8) {
        const auto ids = IdRange(base + i, base + i + 8);
        ASSERT_TRUE(c->Write(WriteMode::kInsert, ids, VersionedRows(ids)).ok());
        for (uint64_t id : ids) expected[w][id] = 0;
        const auto half = IdRange(base + i, base + i + 4);
        ASSERT_TRUE(c->Delete(half).ok());
        for (uint64_t id : half) expected[w].erase(id);
        const auto up = IdRange(base + i + 6, base + i + 8);
        ASSERT_TRUE(
            c->Write(WriteMode::kUpsert, up, VersionedRows(up, 2)).ok());
        for (uint64_t id : up) expected[w][id] = 2;
      }
    });
  }
  threads.emplace_back([&] {
    SearchParams params;
    params.k = 5;
    while (!stop.load()) {
      auto found = c->collection().Search(VersionedRow(7), params);
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
    const auto part =
        VersionedContents(c->collection(), w * 100000 + kPerWriter);
    got.insert(part.begin(), part.end());
  }
  EXPECT_EQ(got, want);
  ASSERT_TRUE(c->Close(true).ok());
  auto reopened = DurableCollection::Open(dir, QuietOptions());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  std::map<uint64_t, float> after;
  for (int w = 0; w < kWriters; ++w) {
    const auto part =
        VersionedContents((*reopened)->collection(), w * 100000 + kPerWriter);
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
