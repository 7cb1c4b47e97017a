// Integration tests: the real peakknn-server binary on a loopback port,
// driven through the real C++ client (and raw gRPC where the client would
// hide the behaviour under test).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "engine/recall_calculator.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"

namespace peakknn {
namespace {

using client::Client;
using client::ClientOptions;
using peakknn::testing::RandomVectors;
using peakknn::testing::ServerProcess;
using ::testing::HasSubstr;

constexpr int kDim = 16;

// Exact k nearest ids by L2 (ties by lower id), for checking.
std::vector<uint64_t> BruteForce(const std::vector<float>& data, int dim,
                                 const float* query, int k) {
  const int64_t n = static_cast<int64_t>(data.size()) / dim;
  std::vector<std::pair<float, uint64_t>> d;
  for (int64_t i = 0; i < n; ++i) {
    float s = 0;
    for (int j = 0; j < dim; ++j) {
      const float t = data[i * dim + j] - query[j];
      s += t * t;
    }
    d.push_back({s, static_cast<uint64_t>(i)});
  }
  std::partial_sort(d.begin(), d.begin() + k, d.end());
  std::vector<uint64_t> ids;
  for (int i = 0; i < k; ++i) ids.push_back(d[i].second);
  return ids;
}

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(const std::vector<std::string>& flags = {},
                   const std::vector<std::string>& env = {}) {
    // Shutdown waits out the drain time while an idle client connection
    // stays open, so tests keep it short (a later flag wins).
    std::vector<std::string> all = {"--drain_seconds=2"};
    all.insert(all.end(), flags.begin(), flags.end());
    absl::StatusOr<ServerProcess> server = ServerProcess::Start(all, env);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::make_unique<ServerProcess>(std::move(*server));
    ClientOptions options;
    options.target = server_->target();
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(options);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
  }

  void CreateAndFill(const std::string& name, int64_t rows) {
    v1::CollectionSchema schema;
    schema.set_name(name);
    schema.set_dim(kDim);
    schema.set_metric(v1::METRIC_L2);
    ASSERT_TRUE(client_->CreateCollection(schema).ok());
    data_ = RandomVectors(rows, kDim, 1);
    std::vector<uint64_t> ids(rows);
    std::iota(ids.begin(), ids.end(), 0);
    absl::StatusOr<client::InsertSummary> s =
        client_->InsertAll(name, ids, data_);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_EQ(s->rows, rows);
  }

  void TearDown() override {
    if (server_ != nullptr && server_->process.pid() > 0) {
      absl::StatusOr<int> rc = server_->process.Stop(SIGTERM);
      EXPECT_TRUE(rc.ok()) << rc.status();
      if (rc.ok()) {
        EXPECT_EQ(*rc, 0) << server_->Log();
      }
    }
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Client> client_;
  std::vector<float> data_;
};

TEST_F(ServerTest, CollectionLifecycleAndErrors) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max_dim=256"}));
  v1::CollectionSchema schema;
  schema.set_name("c1");
  schema.set_dim(8);
  schema.set_metric(v1::METRIC_COSINE);
  schema.set_dtype(v1::DTYPE_BF16);
  absl::StatusOr<v1::CollectionInfo> info = client_->CreateCollection(schema);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->schema().default_recall_target(), 0.95);
  EXPECT_EQ(info->schema().dtype(), v1::DTYPE_BF16);

  EXPECT_EQ(client_->CreateCollection(schema).status().code(),
            absl::StatusCode::kAlreadyExists);
  auto list = client_->ListCollections();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].schema().name(), "c1");
  auto described = client_->DescribeCollection("c1");
  ASSERT_TRUE(described.ok());
  EXPECT_EQ(described->schema().metric(), v1::METRIC_COSINE);
  EXPECT_EQ(client_->DescribeCollection("nope").status().code(),
            absl::StatusCode::kNotFound);

  // Bad schemas: each error names its field and limit.
  v1::CollectionSchema bad = schema;
  bad.set_name("big");
  bad.set_dim(257);
  absl::Status s = client_->CreateCollection(bad).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("schema.dim=257"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("256"));
  bad.set_dim(0);
  EXPECT_EQ(client_->CreateCollection(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad.set_dim(8);
  bad.set_metric(v1::METRIC_UNSPECIFIED);
  s = client_->CreateCollection(bad).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("schema.metric"));
  bad.set_metric(v1::METRIC_L2);
  bad.set_name("has space");
  EXPECT_EQ(client_->CreateCollection(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad.set_name("");
  s = client_->CreateCollection(bad).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("schema.name"));
  bad.set_name("r");
  bad.set_default_recall_target(1.5);
  EXPECT_EQ(client_->CreateCollection(bad).status().code(),
            absl::StatusCode::kInvalidArgument);

  EXPECT_TRUE(client_->DropCollection("c1").ok());
  EXPECT_EQ(client_->DropCollection("c1").code(), absl::StatusCode::kNotFound);
  list = client_->ListCollections();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(ServerTest, InsertSearchGetUpsertDelete) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_NO_FATAL_FAILURE(CreateAndFill("v", 2000));
  // Exact search finds each row itself, at distance 0, and the true top-k.
  for (int q : {0, 17, 1999}) {
    auto r = client_->Search("v", std::span(&data_[q * kDim], kDim), 5, 1.0);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->results_size(), 1);
    EXPECT_TRUE(r->exact());
    EXPECT_EQ(r->expected_recall(), 1.0);
    const std::vector<uint64_t> truth =
        BruteForce(data_, kDim, &data_[q * kDim], 5);
    EXPECT_THAT(std::vector<uint64_t>(r->results(0).ids().begin(),
                                      r->results(0).ids().end()),
                ::testing::ElementsAreArray(truth));
    EXPECT_EQ(r->results(0).ids(0), static_cast<uint64_t>(q));
    EXPECT_NEAR(r->results(0).distances(0), 0.0f, 1e-4);  // half-norm rounding
  }
  // Approximate search by default reports its plan.
  auto approx = client_->Search("v", std::span(&data_[0], 3 * kDim), 10);
  ASSERT_TRUE(approx.ok());
  EXPECT_EQ(approx->results_size(), 3);
  EXPECT_GE(approx->expected_recall(), 0.95);
  EXPECT_GT(approx->bins(), 0);

  const uint64_t ids[] = {5, 123456};
  auto got = client_->Get("v", ids);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->vectors_size(), 2);
  EXPECT_TRUE(got->vectors(0).found());
  EXPECT_FLOAT_EQ(got->vectors(0).values(3), data_[5 * kDim + 3]);
  EXPECT_FALSE(got->vectors(1).found());

  // Upsert row 5 far away; its old position no longer finds it.
  std::vector<float> far(kDim, 100.0f);
  const uint64_t five[] = {5};
  auto up = client_->Upsert("v", five, far);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->rows(), 1);
  auto r = client_->Search("v", far, 1, 1.0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->results(0).ids(0), 5u);

  const uint64_t del[] = {5, 6, 999999};
  auto d = client_->Delete("v", del);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->deleted(), 2);
  EXPECT_GT(d->sequence(), up->sequence());
  r = client_->Search("v", far, 1, 1.0);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->results(0).ids(0), 5u);
  auto info = client_->DescribeCollection("v");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->live_rows(), 1998);

  EXPECT_EQ(client_->Get("missing", ids).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Delete("v", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      client_->Upsert("v", five, std::vector<float>(kDim - 1)).status().code(),
      absl::StatusCode::kInvalidArgument);
}

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

TEST_F(ServerTest, SearchValidationNamesFieldAndLimit) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer({"--max_k=50", "--max_queries_per_request=4"}));
  ASSERT_NO_FATAL_FAILURE(CreateAndFill("v", 100));
  std::vector<float> q(kDim, 0.5f);
  auto expect = [&](absl::StatusOr<v1::SearchResponse> r, absl::StatusCode code,
                    const std::string& text) {
    EXPECT_EQ(r.status().code(), code) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(text));
  };
  expect(client_->Search("v", q, 0), absl::StatusCode::kInvalidArgument, "k=0");
  expect(client_->Search("v", q, 51), absl::StatusCode::kInvalidArgument,
         "--max_k");
  expect(client_->Search("v", q, 5, 1.5), absl::StatusCode::kInvalidArgument,
         "recall_target=1.5");
  expect(client_->Search("v", {}, 5), absl::StatusCode::kInvalidArgument,
         "queries");
  expect(client_->Search("v", std::span(q).first(kDim - 1), 5),
         absl::StatusCode::kInvalidArgument, "dim 16");
  std::vector<float> five(5 * kDim, 0.1f);
  expect(client_->Search("v", five, 5), absl::StatusCode::kInvalidArgument,
         "--max_queries_per_request");
  q[3] = std::numeric_limits<float>::infinity();
  expect(client_->Search("v", q, 5), absl::StatusCode::kInvalidArgument,
         "queries[3]");
  expect(client_->Search("nope", std::span(q).first(kDim), 5),
         absl::StatusCode::kNotFound, "nope");
  expect(client_->Search("", q, 5), absl::StatusCode::kInvalidArgument,
         "collection");
}

TEST_F(ServerTest, MessageSizeLimitIsEnforced) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max_message_bytes=65536"}));
  ASSERT_NO_FATAL_FAILURE(CreateAndFill("v", 10));
  std::vector<float> big(4096 * kDim, 0.f);  // 256 KiB
  EXPECT_EQ(client_->Search("v", big, 1).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(ServerTest, EnvironmentVariablesConfigureTheServer) {
  ASSERT_NO_FATAL_FAILURE(StartServer({}, {"PEAKKNN_MAX_K=7"}));
  ASSERT_NO_FATAL_FAILURE(CreateAndFill("v", 10));
  std::vector<float> q(kDim, 0.f);
  auto r = client_->Search("v", q, 8);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("[1, 7]"));
  auto stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->max_k(), 7u);
}

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

TEST_F(ServerTest, PlanRecallMatchesTheCalculator) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_NO_FATAL_FAILURE(CreateAndFill("v", 1000));
  v1::PlanRecallRequest req;
  req.set_n(1000000);
  req.set_k(10);
  req.set_recall_target(0.95);
  auto plan = client_->PlanRecall(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::StatusOr<RecallPlan> want = PlanRecall(1000000, 10, 0.95);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(plan->bins(), want->bins);
  EXPECT_DOUBLE_EQ(plan->expected_recall(), want->expected_recall);
  EXPECT_EQ(plan->conservative_bins(), want->conservative_bins);
  req.set_n(0);
  req.set_collection("v");  // plans for the collection's live rows
  plan = client_->PlanRecall(req);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->n(), 1000);
  req.set_recall_target(0);
  EXPECT_EQ(client_->PlanRecall(req).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Raw gRPC through the generic stub: the Debian packages ship the health
// and reflection services but not their generated client code.
absl::StatusOr<std::string> GenericUnary(const std::string& target,
                                         const std::string& method,
                                         const std::string& request) {
  grpc::GenericStub stub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  grpc::Slice slice(request);
  grpc::ByteBuffer req(&slice, 1);
  auto call = stub.PrepareUnaryCall(&ctx, method, req, &cq);
  call->StartCall();
  grpc::ByteBuffer resp;
  grpc::Status status;
  call->Finish(&resp, &status, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  cq.Next(&tag, &ok);
  if (!status.ok()) return absl::UnknownError(status.error_message());
  std::vector<grpc::Slice> slices;
  (void)resp.Dump(&slices);
  std::string out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

TEST_F(ServerTest, HealthServingAndReflectionListsTheService) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  // HealthCheckRequest{service: "peakknn.v1.VectorSearch"} -> status SERVING
  // (field 1 = 1, bytes 08 01).
  const std::string name = "peakknn.v1.VectorSearch";
  auto health = GenericUnary(server_->target(), "/grpc.health.v1.Health/Check",
                             std::string("\x0a", 1) + char(name.size()) + name);
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, std::string("\x08\x01", 2));

  // ServerReflectionRequest{list_services: ""} (field 7, empty).
  grpc::GenericStub stub(grpc::CreateChannel(
      server_->target(), grpc::InsecureChannelCredentials()));
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  auto call = stub.PrepareCall(
      &ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::Slice slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer req(&slice, 1);
  call->Write(req, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::ByteBuffer resp;
  call->Read(&resp, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  std::vector<grpc::Slice> slices;
  (void)resp.Dump(&slices);
  std::string body;
  for (const grpc::Slice& s : slices) {
    body.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  EXPECT_THAT(body, HasSubstr(name));
  EXPECT_THAT(body, HasSubstr("grpc.health.v1.Health"));
  call->WritesDone(reinterpret_cast<void*>(4));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(ServerTest, SigtermDrainsInFlightSearchesThenExitsZero) {
  // Searches wait 500 ms in the batcher, so SIGTERM lands while they are
  // queued; every one must still complete OK.
  ASSERT_NO_FATAL_FAILURE(StartServer(
      {"--max_batch=1000", "--max_delay_us=500000", "--drain_seconds=30"}));
  ASSERT_NO_FATAL_FAILURE(CreateAndFill("v", 500));
  constexpr int kInFlight = 16;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kInFlight; ++i) {
    threads.emplace_back([&, i] {
      auto r = client_->Search("v", std::span(&data_[i * kDim], kDim), 4, 1.0);
      if (r.ok() && r->results(0).ids(0) == static_cast<uint64_t>(i)) ++ok;
    });
  }
  absl::SleepFor(absl::Milliseconds(200));
  absl::StatusOr<int> rc = server_->process.Stop(SIGTERM);
  for (auto& t : threads) t.join();
  ASSERT_TRUE(rc.ok()) << rc.status();
  EXPECT_EQ(*rc, 0) << server_->Log();
  EXPECT_EQ(ok.load(), kInFlight) << server_->Log();
  EXPECT_THAT(server_->Log(), HasSubstr("draining"));
  // Gone: a new call fails UNAVAILABLE naming the target.
  auto after = client_->ListCollections();
  EXPECT_EQ(after.status().code(), absl::StatusCode::kUnavailable);
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

// --backend: tests/server_backend_test.cc.
TEST(ServerStartupTest, BadFlagsExitTwo) {
  for (const std::string& flag :
       {std::string("--max_batch=0"), std::string("--cuda_device=-1")}) {
    auto bad = ServerProcess::Start({flag});
    ASSERT_FALSE(bad.ok()) << flag;
    EXPECT_THAT(std::string(bad.status().message()),
                HasSubstr("exited with 2"));
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr(flag));
  }
}

// Issue 12 item 10: --help lists the server's own flags (Abseil's default
// lists only flags defined in a file named like the program, and the
// server's live in server/config.cc).
TEST(ServerStartupTest, HelpListsTheServerFlags) {
  std::string output;
  peakknn::testing::RunCommand(absl::StrCat(PEAKKNN_SERVER_BIN, " --help 2>&1"),
                               &output);
  EXPECT_THAT(output, ::testing::Not(HasSubstr("No flags matched")));
  for (const char* flag :
       {"--listen", "--data_dir", "--durability", "--max_k",
        "--max_message_bytes", "--drain_seconds", "--check_config"}) {
    EXPECT_THAT(output, HasSubstr(flag));
  }
}

TEST(ClientTest, UnreachableServerIsNamed) {
  absl::StatusOr<int> port = peakknn::testing::FreePort();
  ASSERT_TRUE(port.ok());
  ClientOptions options;
  options.target = absl::StrCat("127.0.0.1:", *port);
  options.connect_timeout = absl::Milliseconds(300);
  auto c = Client::Connect(options);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(options.target));
}

}  // namespace
}  // namespace peakknn
