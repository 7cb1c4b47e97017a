// The dynamic batcher over a real (in-memory) engine collection: merging,
// splitting at max_batch, per-request k and recall, queue bound, deadlines,
// Stop, the thread ending when idle.
#include "server/batcher.h"

#include <atomic>
#include <numeric>
#include <random>
#include <vector>

#include "absl/time/clock.h"
#include "base/notification.h"
#include "base/thread_pool.h"
#include "engine/collection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/proc_stats.h"

namespace peakknn::server {
namespace {

constexpr int kDim = 8;

class BatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CollectionSchema schema;
    schema.name = "b";
    schema.dim = kDim;
    auto collection = Collection::Create(schema, CollectionOptions{});
    ASSERT_TRUE(collection.ok()) << collection.status();
    collection_ = std::move(*collection);
    std::mt19937 rng(5);
    std::normal_distribution<float> normal;
    rows_.resize(1000 * kDim);
    for (float& x : rows_) x = normal(rng);
    std::vector<uint64_t> ids(1000);
    std::iota(ids.begin(), ids.end(), 0);
    ASSERT_TRUE(collection_->Write(WriteMode::kInsert, ids, rows_).ok());
  }

  std::unique_ptr<Batcher> Make(const Batcher::Options& options) {
    return std::make_unique<Batcher>(
        "b", kDim, options,
        [this](std::span<const float> q, const SearchParams& p,
               const ReadConsistency&) {
          calls_.fetch_add(1);
          last_k_ = p.k;
          last_target_ = p.recall_target;
          params_.push_back(p);  // one batcher thread: no race
          return collection_->SearchChecked(q, p);
        },
        nullptr);
  }

  // A job for row `row` as the query.
  SearchJob Job(int row, int64_t k, double target, Notification* done,
                absl::Status* status, std::vector<uint64_t>* ids) {
    SearchJob job;
    job.queries = std::span(&rows_[row * kDim], kDim);
    job.num_queries = 1;
    job.k = k;
    job.recall_target = target;
    job.done = [=](const absl::Status& s, const SearchResults* batch,
                   int64_t first) {
      *status = s;
      if (s.ok()) {
        const SearchResults& r = *batch;
        ids->assign(r.ids.begin() + first * r.k,
                    r.ids.begin() + first * r.k +
                        std::min<int64_t>(k, r.counts[first]));
      }
      done->Notify();
    };
    return job;
  }

  std::unique_ptr<Collection> collection_;
  std::vector<float> rows_;
  std::atomic<int> calls_{0};
  int64_t last_k_ = 0;
  double last_target_ = 0;
  std::vector<SearchParams> params_;  // of every engine call, in order
};

TEST_F(BatcherTest, ConcurrentJobsShareOneBatchWithMaxKAndStrictestTarget) {
  Batcher::Options options;
  options.max_batch = 16;
  options.max_delay = absl::Milliseconds(200);
  auto batcher = Make(options);
  Notification done[3];
  absl::Status status[3];
  std::vector<uint64_t> ids[3];
  ASSERT_TRUE(
      batcher->Submit(Job(1, 3, 0.9, &done[0], &status[0], &ids[0])).ok());
  ASSERT_TRUE(
      batcher->Submit(Job(2, 7, 1.0, &done[1], &status[1], &ids[1])).ok());
  ASSERT_TRUE(
      batcher->Submit(Job(3, 1, 0.5, &done[2], &status[2], &ids[2])).ok());
  for (auto& d : done) d.WaitForNotification();
  EXPECT_EQ(calls_.load(), 1);
  EXPECT_EQ(last_k_, 7);
  EXPECT_EQ(last_target_, 1.0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(status[i].ok()) << status[i];
    EXPECT_EQ(ids[i].front(), static_cast<uint64_t>(i + 1));  // itself first
  }
  EXPECT_EQ(ids[0].size(), 3u);
  EXPECT_EQ(ids[1].size(), 7u);
  EXPECT_EQ(ids[2].size(), 1u);
}

// Jobs that name a bin count (a router's share of a cluster plan) and jobs
// with a recall target that arrive together are searched as two batches,
// each with the most demanding plan of its own jobs.
TEST_F(BatcherTest, BinJobsAndTargetJobsAreSearchedApart) {
  Batcher::Options options;
  options.max_batch = 16;
  options.max_delay = absl::Milliseconds(200);
  auto batcher = Make(options);
  Notification done[4];
  absl::Status status[4];
  std::vector<uint64_t> ids[4];
  SearchJob bins_small = Job(1, 3, 0.9, &done[0], &status[0], &ids[0]);
  bins_small.bins = 32;
  SearchJob bins_large = Job(2, 5, 0.9, &done[1], &status[1], &ids[1]);
  bins_large.bins = 64;
  ASSERT_TRUE(batcher->Submit(std::move(bins_small)).ok());
  ASSERT_TRUE(
      batcher->Submit(Job(3, 2, 0.8, &done[2], &status[2], &ids[2])).ok());
  ASSERT_TRUE(batcher->Submit(std::move(bins_large)).ok());
  ASSERT_TRUE(
      batcher->Submit(Job(4, 4, 0.95, &done[3], &status[3], &ids[3])).ok());
  for (auto& d : done) d.WaitForNotification();
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(status[i].ok()) << status[i];
    EXPECT_EQ(ids[i].front(), static_cast<uint64_t>(i + 1));  // itself first
  }
  ASSERT_EQ(params_.size(), 2u);
  EXPECT_EQ(params_[0].bins, 0);
  EXPECT_EQ(params_[0].k, 4);
  EXPECT_EQ(params_[0].recall_target, 0.95);
  EXPECT_EQ(params_[1].bins, 64);
  EXPECT_EQ(params_[1].k, 5);
}

TEST_F(BatcherTest, FullBatchDispatchesWithoutWaitingAndSplitsAtMaxBatch) {
  Batcher::Options options;
  options.max_batch = 2;
  options.max_delay = absl::Seconds(30);  // only a full batch can go
  auto batcher = Make(options);
  Notification done[4];
  absl::Status status[4];
  std::vector<uint64_t> ids[4];
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(
        batcher->Submit(Job(i, 2, 1.0, &done[i], &status[i], &ids[i])).ok());
  }
  for (auto& d : done) d.WaitForNotification();
  EXPECT_EQ(calls_.load(), 2);
}

TEST_F(BatcherTest, QueueBoundAndExpiredJobsAndStop) {
  Batcher::Options options;
  options.max_batch = 100;
  options.max_queue = 2;
  options.max_delay = absl::Milliseconds(300);
  auto batcher = Make(options);
  Notification done[3];
  absl::Status status[3];
  std::vector<uint64_t> ids[3];
  SearchJob expired = Job(0, 1, 1.0, &done[0], &status[0], &ids[0]);
  expired.deadline = absl::Now() + absl::Milliseconds(50);
  ASSERT_TRUE(batcher->Submit(std::move(expired)).ok());
  ASSERT_TRUE(
      batcher->Submit(Job(1, 1, 1.0, &done[1], &status[1], &ids[1])).ok());
  absl::Status full =
      batcher->Submit(Job(2, 1, 1.0, &done[2], &status[2], &ids[2]));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  done[0].WaitForNotification();
  done[1].WaitForNotification();
  EXPECT_EQ(status[0].code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(status[1].ok());
  EXPECT_EQ(calls_.load(), 1);  // the expired job was not computed
  batcher->Stop();
  EXPECT_EQ(
      batcher->Submit(Job(2, 1, 1.0, &done[2], &status[2], &ids[2])).code(),
      absl::StatusCode::kUnavailable);
}

TEST_F(BatcherTest, StopRunsQueuedJobsFirst) {
  Batcher::Options options;
  options.max_delay = absl::Seconds(30);
  auto batcher = Make(options);
  Notification done;
  absl::Status status;
  std::vector<uint64_t> ids;
  ASSERT_TRUE(batcher->Submit(Job(4, 2, 1.0, &done, &status, &ids)).ok());
  batcher->Stop();  // does not wait 30 s, and does not drop the job
  ASSERT_TRUE(done.HasBeenNotified());
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(ids.front(), 4u);
}

// A batcher holds its thread only while it has searches: many batchers,
// each searched once, hold none once idle, and the next search starts one
// again.
TEST_F(BatcherTest, ThreadEndsWhenIdleAndStartsAgain) {
  ThreadPool::Default();  // the engine's workers are not the batchers'
  const int threads = peakknn::testing::CountThreads();
  Batcher::Options options;
  options.max_delay = absl::ZeroDuration();
  options.idle_timeout = absl::Milliseconds(50);
  std::vector<std::unique_ptr<Batcher>> batchers;
  for (int i = 0; i < 20; ++i) {
    batchers.push_back(Make(options));
    Notification done;
    absl::Status status;
    std::vector<uint64_t> ids;
    ASSERT_TRUE(
        batchers.back()->Submit(Job(i, 1, 1.0, &done, &status, &ids)).ok());
    done.WaitForNotification();
    EXPECT_TRUE(status.ok()) << status;
  }
  EXPECT_TRUE(peakknn::testing::WaitFor(
      [&] { return peakknn::testing::CountThreads() <= threads; },
      absl::Seconds(10)))
      << peakknn::testing::CountThreads() - threads
      << " threads left by 20 idle batchers";

  Notification done;
  absl::Status status;
  std::vector<uint64_t> ids;
  ASSERT_TRUE(batchers[3]->Submit(Job(7, 1, 1.0, &done, &status, &ids)).ok());
  done.WaitForNotification();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids.front(), 7u);
}

}  // namespace
}  // namespace peakknn::server
