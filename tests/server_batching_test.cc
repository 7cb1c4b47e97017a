// The real peakknn-server's search batcher (tests/server_test_fixture.h):
// concurrent clients sharing batches, a full queue, and requests that expire
// while queued.

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"
#include "tests/server_test_fixture.h"
namespace peakknn {
namespace {

using client::Client;
using client::ClientOptions;
using peakknn::testing::BruteForce;
using peakknn::testing::ServerTest;
using ::testing::HasSubstr;

constexpr int kDim = testing::kServerTestDim;

TEST_F(ServerTest, SixtyFourConcurrentClientsWithMixedKAndRecallShareBatches) {
  // A long max_delay makes concurrent requests meet in one batch.
  ASSERT_NO_FATAL_FAILURE(
      StartServer({"--max_delay_us=20000", "--max_batch=64"}));
  ASSERT_NO_FATAL_FAILURE(CreateAndFill("v", 3000));
  constexpr int kClients = 64;
  constexpr int kPerClient = 8;
  std::atomic<int> failures{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      ClientOptions options;
      options.target = server_->target();
      auto own = Client::Connect(options);  // one channel per client
      if (!own.ok()) {
        ++failures;
        return;
      }
      for (int i = 0; i < kPerClient; ++i) {
        const int q = (c * kPerClient + i) % 3000;
        const int k = 1 + (c % 20);
        const double target = c % 2 == 0 ? 1.0 : 0.9;
        auto r =
            (*own)->Search("v", std::span(&data_[q * kDim], kDim), k, target);
        if (!r.ok() || r->results_size() != 1 ||
            r->results(0).ids_size() != k) {
          ++failures;
          continue;
        }
        if (target == 1.0) {
          const auto truth = BruteForce(data_, kDim, &data_[q * kDim], k);
          if (!std::equal(truth.begin(), truth.end(),
                          r->results(0).ids().begin())) {
            ++wrong;
          }
        } else if (r->results(0).ids(0) != static_cast<uint64_t>(q)) {
          ++wrong;  // the query's own row is always the best
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  auto stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->search_requests(), uint64_t{kClients * kPerClient});
  // Batching happened: far fewer engine batches than requests.
  EXPECT_LT(stats->batches(), stats->search_requests() / 4);
}

TEST_F(ServerTest, FullQueueAnswersResourceExhausted) {
  // The batcher holds a lone request for 2 s; the queue holds 2 queries.
  ASSERT_NO_FATAL_FAILURE(
      StartServer({"--max_queue=2", "--max_queries_per_request=2",
                   "--max_batch=1000", "--max_delay_us=2000000"}));
  ASSERT_NO_FATAL_FAILURE(CreateAndFill("v", 50));
  std::vector<float> two(2 * kDim, 0.f);
  absl::StatusOr<v1::SearchResponse> first;
  std::thread t([&] { first = client_->Search("v", two, 3); });
  absl::SleepFor(absl::Milliseconds(300));
  auto second = client_->Search("v", std::span(two).first(kDim), 3);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("--max_queue=2"));
  t.join();
  EXPECT_TRUE(first.ok()) << first.status();
}

TEST_F(ServerTest, ExpiredRequestsAreDroppedNotComputed) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer({"--max_batch=1000", "--max_delay_us=1000000"}));
  ASSERT_NO_FATAL_FAILURE(CreateAndFill("v", 50));
  std::vector<float> q(kDim, 0.f);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(200));
  v1::SearchRequest req;
  req.set_collection("v");
  for (float x : q) req.add_queries(x);
  req.set_k(3);
  v1::SearchResponse resp;
  grpc::Status s = client_->stub().Search(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  absl::SleepFor(absl::Milliseconds(1300));  // the batcher wakes and drops it
  auto stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->batches(), 0u);
  auto metrics = peakknn::testing::HttpGet(server_->metrics_port, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(*metrics,
              HasSubstr("peakknn_search_expired_total{collection=\"v\"} 1"));
}

}  // namespace
}  // namespace peakknn
