// server/inflight_budget.h: reservations against --max_inflight_bytes.
#include "server/inflight_budget.h"

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace peakknn::server {
namespace {

using ::testing::HasSubstr;

TEST(InflightBudgetTest, ReservesUntilFullAndReleasesOnDestruction) {
  int64_t gauge = 0;
  InflightBudget budget(100, [&](int64_t delta) { gauge += delta; });
  absl::StatusOr<InflightBytes> a = budget.Reserve(60, "Upsert");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(budget.in_use(), 60);
  EXPECT_EQ(gauge, 60);
  absl::StatusOr<InflightBytes> b = budget.Reserve(41, "Search");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(b.status().message(), HasSubstr("Search"));
  EXPECT_THAT(b.status().message(), HasSubstr("--max_inflight_bytes=100"));
  EXPECT_EQ(budget.in_use(), 60);  // a refusal reserves nothing
  {
    absl::StatusOr<InflightBytes> c = budget.Reserve(40, "Get");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(budget.in_use(), 100);
  }
  EXPECT_EQ(budget.in_use(), 60);
  InflightBytes moved = *std::move(a);
  EXPECT_EQ(moved.bytes(), 60);
  EXPECT_EQ(budget.in_use(), 60);  // moving does not release
  moved.Release();
  EXPECT_EQ(budget.in_use(), 0);
  EXPECT_EQ(gauge, 0);
}

TEST(InflightBudgetTest, ConcurrentReservationsNeverPassTheMaximum) {
  InflightBudget budget(1000);
  std::atomic<int64_t> most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        absl::StatusOr<InflightBytes> held = budget.Reserve(300, "t");
        const int64_t now = budget.in_use();
        int64_t seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(most.load(), 1000);
  EXPECT_EQ(budget.in_use(), 0);
}

}  // namespace
}  // namespace peakknn::server
