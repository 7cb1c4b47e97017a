// Writes against the real peakknn-server (tests/server_test_fixture.h):
// InsertStream acks and failures, concurrent pipelined streams and unary
// writes, and a server dying mid-stream.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
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
using peakknn::testing::RandomVectors;
using peakknn::testing::ServerTest;
using ::testing::HasSubstr;

constexpr int kDim = testing::kServerTestDim;

TEST_F(ServerTest, InsertStreamAcksEachBatchAndIsolatesFailures) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  v1::CollectionSchema schema;
  schema.set_name("s");
  schema.set_dim(2);
  schema.set_metric(v1::METRIC_L2);
  ASSERT_TRUE(client_->CreateCollection(schema).ok());
  grpc::ClientContext ctx;
  auto stream = client_->stub().InsertStream(&ctx);
  auto send = [&](const std::string& collection, std::vector<uint64_t> ids,
                  std::vector<float> v, uint64_t tag) {
    v1::InsertRequest req;
    req.set_collection(collection);
    for (uint64_t id : ids) req.add_ids(id);
    for (float x : v) req.add_vectors(x);
    req.set_batch_tag(tag);
    EXPECT_TRUE(stream->Write(req));
    v1::InsertAck ack;
    EXPECT_TRUE(stream->Read(&ack));
    EXPECT_EQ(ack.batch_tag(), tag);
    return ack;
  };
  v1::InsertAck a = send("", {1}, {1, 1}, 10);  // first message needs a name
  EXPECT_EQ(a.code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(a.error(), HasSubstr("collection"));
  a = send("s", {1, 2}, {1, 1, 2, 2}, 11);
  EXPECT_EQ(a.code(), 0) << a.error();
  EXPECT_EQ(a.rows(), 2);
  const uint64_t seq = a.sequence();
  EXPECT_GT(seq, 0u);
  a = send("", {2, 3}, {0, 0, 3, 3}, 12);  // id 2 exists: whole batch fails
  EXPECT_NE(a.code(), 0);
  EXPECT_EQ(a.sequence(), 0u);
  a = send("", {3}, {std::numeric_limits<float>::quiet_NaN(), 0}, 13);
  EXPECT_EQ(a.code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(a.error(), HasSubstr("finite"));
  a = send("other", {4}, {4, 4}, 14);
  EXPECT_THAT(a.error(), HasSubstr("open another stream"));
  a = send("", {3}, {3, 3}, 15);  // the stream still works
  EXPECT_EQ(a.code(), 0) << a.error();
  EXPECT_GT(a.sequence(), seq);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  auto info = client_->DescribeCollection("s");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->live_rows(), 3);  // ids 1, 2, 3; nothing of failed batches
  // An ack means visible: search sees the rows.
  const float q[] = {3, 3};
  auto r = client_->Search("s", q, 1, 1.0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->results(0).ids(0), 3u);
}

// Several pipelined InsertStreams into one collection at once (their
// batches share the store's group commits): every batch is acked, in the
// order it was sent, with sequence numbers rising within each stream; a
// failed batch fails alone; every row of the good batches is stored.
TEST_F(ServerTest, ConcurrentPipelinedInsertStreamsAckInOrderAndStoreAll) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  v1::CollectionSchema schema;
  schema.set_name("multi");
  schema.set_dim(kDim);
  schema.set_metric(v1::METRIC_L2);
  ASSERT_TRUE(client_->CreateCollection(schema).ok());
  constexpr int kStreams = 4, kBatches = 24, kRows = 50;
  constexpr int kBadBatch = 7;  // repeats an id of batch 0: ALREADY_EXISTS
  const std::vector<float> data =
      RandomVectors(kStreams * kBatches * kRows, kDim, 3);
  const auto id_of = [](int stream, int batch, int row) {
    return static_cast<uint64_t>((stream * kBatches + batch) * kRows + row);
  };
  struct Seen {
    std::vector<v1::InsertAck> acks;
    bool finished_ok = false;
  };
  std::vector<Seen> seen(kStreams);
  std::vector<std::thread> streams;
  for (int s = 0; s < kStreams; ++s) {
    streams.emplace_back([&, s] {
      ClientOptions options;
      options.target = server_->target();
      auto c = Client::Connect(options);  // one connection per stream
      if (!c.ok()) return;
      grpc::ClientContext ctx;
      auto stream = (*c)->stub().InsertStream(&ctx);
      std::thread reader([&] {
        v1::InsertAck ack;
        while (stream->Read(&ack)) seen[s].acks.push_back(ack);
      });
      // Every batch is written without waiting for acks: the server holds
      // up to its pipeline depth in flight and applies back-pressure.
      for (int b = 0; b < kBatches; ++b) {
        v1::InsertRequest req;
        if (b == 0) req.set_collection("multi");
        req.set_batch_tag(static_cast<uint64_t>(b));
        for (int r = 0; r < kRows; ++r) {
          const uint64_t id = b == kBadBatch && r == kRows - 1 ? id_of(s, 0, 0)
                                                               : id_of(s, b, r);
          req.add_ids(id);
          const float* v = &data[id_of(s, b, r) * kDim];
          req.mutable_vectors()->Add(v, v + kDim);
        }
        if (!stream->Write(req)) break;
      }
      stream->WritesDone();
      reader.join();
      seen[s].finished_ok = stream->Finish().ok();
    });
  }
  for (std::thread& t : streams) t.join();
  for (int s = 0; s < kStreams; ++s) {
    SCOPED_TRACE(absl::StrCat("stream ", s));
    EXPECT_TRUE(seen[s].finished_ok);
    ASSERT_EQ(seen[s].acks.size(), static_cast<size_t>(kBatches));
    uint64_t last_sequence = 0;
    for (int b = 0; b < kBatches; ++b) {
      const v1::InsertAck& ack = seen[s].acks[b];
      EXPECT_EQ(ack.batch_tag(), static_cast<uint64_t>(b));
      if (b == kBadBatch) {
        EXPECT_EQ(ack.code(),
                  static_cast<int>(absl::StatusCode::kAlreadyExists))
            << ack.error();
        EXPECT_EQ(ack.sequence(), 0u);
        continue;
      }
      EXPECT_EQ(ack.code(), 0) << ack.error();
      EXPECT_EQ(ack.rows(), kRows);
      EXPECT_EQ(ack.durability(), v1::DURABILITY_FSYNC);
      EXPECT_GT(ack.sequence(), last_sequence);
      last_sequence = ack.sequence();
    }
  }
  auto info = client_->DescribeCollection("multi");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->live_rows(), kStreams * (kBatches - 1) * kRows);
  // Spot-check stored vectors, and that the failed batch left nothing.
  const uint64_t probe[] = {id_of(0, 1, 0), id_of(3, kBatches - 1, kRows - 1),
                            id_of(2, kBadBatch, 0)};
  auto got = client_->Get("multi", probe);
  ASSERT_TRUE(got.ok()) << got.status();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(got->vectors(i).found());
    EXPECT_EQ(got->vectors(i).values(kDim - 1),
              data[probe[i] * kDim + kDim - 1]);
  }
  EXPECT_FALSE(got->vectors(2).found());
}

// Unary Upsert and Delete finish when the store acknowledges (after the
// fsync), not on a blocked gRPC thread: many at once all complete, each
// with its own sequence number, and what they acknowledged is visible. A
// batch the store refuses before logging it is answered too.
TEST_F(ServerTest, ConcurrentUnaryWritesCompleteWhenDurable) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_NO_FATAL_FAILURE(CreateAndFill("u", 100));
  constexpr int kThreads = 16, kWrites = 8;
  std::vector<std::vector<uint64_t>> sequences(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int w = 0; w < kWrites; ++w) {
        // Thread t upserts new id 1000 + t * kWrites + w as (t, w, 0, ...);
        // for odd w it also deletes row t * kWrites + w of the first 100.
        const uint64_t id[] = {static_cast<uint64_t>(1000 + t * kWrites + w)};
        std::vector<float> v(kDim, 0.0f);
        v[0] = static_cast<float>(t);
        v[1] = static_cast<float>(w);
        auto up = client_->Upsert("u", id, v);
        if (!up.ok() || up->rows() != 1 ||
            up->durability() != v1::DURABILITY_FSYNC) {
          ++failures;
          continue;
        }
        sequences[t].push_back(up->sequence());
        if (w % 2 == 1 && t * kWrites + w < 100) {
          const uint64_t old[] = {static_cast<uint64_t>(t * kWrites + w)};
          auto del = client_->Delete("u", old);
          if (!del.ok() || del->deleted() != 1) {
            ++failures;
            continue;
          }
          sequences[t].push_back(del->sequence());
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<uint64_t> all;
  for (const auto& s : sequences) {
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));  // one thread: in order
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
  int deletes = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int w = 1; w < kWrites; w += 2) deletes += t * kWrites + w < 100;
  }
  auto info = client_->DescribeCollection("u");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->live_rows(), 100 + kThreads * kWrites - deletes);
  const uint64_t probe[] = {1000 + 5 * kWrites + 3};
  auto got = client_->Get("u", probe);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->vectors(0).found());
  EXPECT_EQ(got->vectors(0).values(0), 5.0f);
  EXPECT_EQ(got->vectors(0).values(1), 3.0f);

  // Refused by the store's own validation (after the server's checks):
  // the call is still finished, with the store's message.
  const uint64_t twice[] = {7, 7};
  auto dup = client_->Upsert("u", twice, std::vector<float>(2 * kDim, 1.0f));
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dup.status().message(), HasSubstr("more than once"));
  const uint64_t missing[] = {1};
  EXPECT_EQ(client_->Delete("nope", missing).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ServerTest, InsertAllReturnsAnErrorWhenTheServerDiesMidStream) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  v1::CollectionSchema schema;
  schema.set_name("k");
  schema.set_dim(kDim);
  schema.set_metric(v1::METRIC_L2);
  ASSERT_TRUE(client_->CreateCollection(schema).ok());
  const int64_t rows = 20000;
  const std::vector<float> data = RandomVectors(rows, kDim, 9);
  std::vector<uint64_t> ids(rows);
  std::iota(ids.begin(), ids.end(), 0);
  client::InsertOptions options;
  options.batch_rows = 64;
  bool killed = false;
  auto result =
      client_->InsertAll("k", ids, data, options, [&](int64_t, int64_t) {
        if (!killed) {
          killed = true;
          kill(server_->process.pid(), SIGKILL);
        }
      });
  EXPECT_TRUE(killed);
  EXPECT_FALSE(result.ok());  // and, above all, it returned
  absl::StatusOr<int> rc = server_->process.Wait(10);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 128 + SIGKILL);
}

}  // namespace
}  // namespace peakknn
