// router/nats/kv_bucket.h against a real 3-node NATS JetStream cluster on
// loopback: reads and writes, create-if-absent, compare-and-set conflicts,
// deletes, key listing, watches, and keys that expire (the bucket's TTL).
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/nats/kv_bucket.h"
#include "tests/nats_test_cluster.h"

namespace peakknn {
namespace {

using nats::KvBucket;
using nats::KvEntry;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

class NatsKvTest : public testing::NatsClusterTest {
 protected:
  std::unique_ptr<KvBucket> Bucket(const nats::KvBucketConfig& config) {
    absl::StatusOr<std::unique_ptr<KvBucket>> bucket =
        KvBucket::CreateOrBind(*conn_, config);
    EXPECT_TRUE(bucket.ok()) << bucket.status();
    return bucket.ok() ? *std::move(bucket) : nullptr;
  }
};

TEST_F(NatsKvTest, PutGetCreateDelete) {
  std::unique_ptr<KvBucket> kv = Bucket({.name = "meta", .replicas = 3});
  ASSERT_NE(kv, nullptr);
  absl::StatusOr<KvEntry> missing = kv->Get("collections.docs");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("key collections.docs in bucket meta"));

  absl::StatusOr<uint64_t> created = kv->Create("collections.docs", "v1");
  ASSERT_TRUE(created.ok()) << created.status();
  absl::StatusOr<KvEntry> got = kv->Get("collections.docs");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->value, "v1");
  EXPECT_EQ(got->revision, *created);
  EXPECT_LT(absl::AbsDuration(absl::Now() - got->created), absl::Minutes(1));
  EXPECT_EQ(got->op, KvEntry::Op::kPut);

  // Create-if-absent refuses a live key, naming its revision.
  absl::StatusOr<uint64_t> again = kv->Create("collections.docs", "v2");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists)
      << again.status();
  EXPECT_THAT(again.status().message(),
              HasSubstr(absl::StrCat("exists at revision ", *created)));

  absl::StatusOr<uint64_t> put = kv->Put("collections.docs", "v3");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_GT(*put, *created);

  // Deleted keys read as absent and may be created again.
  ASSERT_TRUE(kv->Delete("collections.docs").ok());
  EXPECT_EQ(kv->Get("collections.docs").status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<uint64_t> recreated = kv->Create("collections.docs", "v4");
  ASSERT_TRUE(recreated.ok()) << recreated.status();
  EXPECT_GT(*recreated, *put);
  EXPECT_TRUE(kv->Delete("collections.never-there").ok());

  // Opening the bucket again with the same configuration binds to it.
  std::unique_ptr<KvBucket> same = Bucket({.name = "meta", .replicas = 3});
  ASSERT_NE(same, nullptr);
  got = same->Get("collections.docs");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->value, "v4");

  absl::StatusOr<uint64_t> bad_key = kv->Put("bad key", "x");
  EXPECT_EQ(bad_key.status().code(), absl::StatusCode::kInvalidArgument)
      << bad_key.status();
  EXPECT_THAT(bad_key.status().message(), HasSubstr("key bad key"));
}

TEST_F(NatsKvTest, CompareAndSetDetectsConcurrentWriters) {
  std::unique_ptr<KvBucket> kv = Bucket({.name = "meta", .replicas = 3});
  ASSERT_NE(kv, nullptr);
  absl::StatusOr<uint64_t> r1 = kv->Create("members.0.a", "one");
  ASSERT_TRUE(r1.ok()) << r1.status();

  // Two writers read revision r1; the first update wins.
  absl::StatusOr<uint64_t> r2 = kv->Update("members.0.a", "two", *r1);
  ASSERT_TRUE(r2.ok()) << r2.status();
  absl::StatusOr<uint64_t> lost = kv->Update("members.0.a", "three", *r1);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kAborted) << lost.status();
  EXPECT_THAT(
      lost.status().message(),
      HasSubstr(absl::StrCat("at revision ", *r1, ": found revision ", *r2)));
  absl::StatusOr<KvEntry> got = kv->Get("members.0.a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->value, "two");

  // Many threads incrementing one counter by CAS: none lost.
  constexpr int kThreads = 4;
  constexpr int kIncrements = 10;
  ASSERT_TRUE(kv->Put("counter", "0").ok());
  std::vector<std::thread> threads;
  std::atomic<int> conflicts{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int done = 0; done < kIncrements;) {
        absl::StatusOr<KvEntry> entry = kv->Get("counter");
        ASSERT_TRUE(entry.ok()) << entry.status();
        const int value = std::stoi(entry->value);
        absl::StatusOr<uint64_t> r =
            kv->Update("counter", std::to_string(value + 1), entry->revision);
        if (r.ok()) {
          ++done;
        } else {
          ASSERT_EQ(r.status().code(), absl::StatusCode::kAborted)
              << r.status();
          ++conflicts;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  got = kv->Get("counter");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->value, std::to_string(kThreads * kIncrements))
      << conflicts << " conflicts";
}

TEST_F(NatsKvTest, KeysAndWatch) {
  std::unique_ptr<KvBucket> kv = Bucket({.name = "meta", .replicas = 3});
  ASSERT_NE(kv, nullptr);
  absl::StatusOr<std::vector<std::string>> keys = kv->Keys();
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_TRUE(keys->empty());

  ASSERT_TRUE(kv->Put("members.0.a", "x").ok());
  ASSERT_TRUE(kv->Put("members.1.b", "y").ok());
  ASSERT_TRUE(kv->Put("collections.docs", "z").ok());
  ASSERT_TRUE(kv->Put("collections.gone", "z").ok());
  ASSERT_TRUE(kv->Delete("collections.gone").ok());
  keys = kv->Keys();
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_THAT(*keys, UnorderedElementsAre("members.0.a", "members.1.b",
                                          "collections.docs"));

  // A watch on members.>: the current values, the caught-up mark, then
  // live writes and deletes in order.
  absl::StatusOr<std::unique_ptr<nats::KvWatcher>> watcher =
      kv->Watch("members.>");
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  std::vector<std::string> initial;
  while (!(*watcher)->caught_up()) {
    absl::StatusOr<std::optional<KvEntry>> next =
        (*watcher)->Next(absl::Seconds(5));
    ASSERT_TRUE(next.ok()) << next.status();
    if (next->has_value()) initial.push_back((*next)->key);
  }
  EXPECT_THAT(initial, UnorderedElementsAre("members.0.a", "members.1.b"));

  ASSERT_TRUE(kv->Put("collections.other", "ignored").ok());
  ASSERT_TRUE(kv->Put("members.2.c", "new").ok());
  ASSERT_TRUE(kv->Delete("members.0.a").ok());
  std::vector<KvEntry> live;
  while (live.size() < 2) {
    absl::StatusOr<std::optional<KvEntry>> next =
        (*watcher)->Next(absl::Seconds(5));
    ASSERT_TRUE(next.ok()) << next.status();
    ASSERT_TRUE(next->has_value()) << "no update within 5 s";
    live.push_back(**next);
  }
  EXPECT_EQ(live[0].key, "members.2.c");
  EXPECT_EQ(live[0].value, "new");
  EXPECT_EQ(live[0].op, KvEntry::Op::kPut);
  EXPECT_EQ(live[1].key, "members.0.a");
  EXPECT_EQ(live[1].op, KvEntry::Op::kDelete);
  EXPECT_GT(live[1].revision, live[0].revision);

  // Stop wakes a waiting Next.
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(200));
    (*watcher)->Stop();
  });
  absl::StatusOr<std::optional<KvEntry>> stopped =
      (*watcher)->Next(absl::Seconds(20));
  stopper.join();
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kCancelled)
      << stopped.status();
}

TEST_F(NatsKvTest, KeysExpireAfterTheBucketTtlUnlessRewritten) {
  constexpr absl::Duration kTtl = absl::Seconds(1);
  std::unique_ptr<KvBucket> kv =
      Bucket({.name = "members", .replicas = 3, .ttl = kTtl});
  ASSERT_NE(kv, nullptr);
  const absl::Time written = absl::Now();
  ASSERT_TRUE(kv->Put("members.0.dead", "x").ok());
  ASSERT_TRUE(kv->Put("members.0.alive", "x").ok());
  ASSERT_TRUE(kv->Get("members.0.dead").ok());

  // "alive" heartbeats every 200 ms; "dead" was written once.
  absl::Time gone = absl::InfiniteFuture();
  while (absl::Now() - written < absl::Seconds(10)) {
    ASSERT_TRUE(kv->Put("members.0.alive", "x").ok());
    absl::StatusOr<KvEntry> dead = kv->Get("members.0.dead");
    if (absl::IsNotFound(dead.status())) {
      gone = absl::Now();
      break;
    }
    ASSERT_TRUE(dead.ok()) << dead.status();
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_NE(gone, absl::InfiniteFuture()) << "not expired within 10 s";
  EXPECT_GE(gone - written, kTtl);
  absl::StatusOr<std::vector<std::string>> keys = kv->Keys();
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_THAT(*keys, UnorderedElementsAre("members.0.alive"));
  // An expired key is absent: create-if-absent takes it.
  EXPECT_TRUE(kv->Create("members.0.dead", "back").ok());
}

}  // namespace
}  // namespace peakknn
