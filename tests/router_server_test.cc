// peakknn-server --role=router as a real process in front of real shard
// replicas (2 shards x 2 replicas, each a real peakknn-server --role=shard)
// on a real 3-node NATS JetStream cluster, all on loopback, driven through
// the public API with the real client: DDL, writes, exact and approximate
// searches (the merged answer equals brute force when exact; measured
// recall meets the promise otherwise), reads, failover when a replica is
// killed, and a clear UNAVAILABLE when a shard has no replica left.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/nats_test_cluster.h"
#include "tests/server_process.h"

namespace peakknn {
namespace {

using client::Client;
using ::testing::HasSubstr;
using testing::ServerProcess;

constexpr int kShards = 2;
constexpr int kDim = 16;
constexpr int kRows = 4000;
// Waits on the cluster: generous for a loaded 2-core machine under
// sanitizers (members heartbeat every 2 s).
constexpr absl::Duration kDeadline = absl::Seconds(90);

std::vector<float> RandomRows(int rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(rows) * kDim);
  for (float& x : v) x = normal(rng);
  return v;
}

// The k nearest ids (L2) among rows whose id is in `live`, by brute force.
std::vector<uint64_t> BruteForce(const std::vector<float>& rows,
                                 const std::set<uint64_t>& live,
                                 const float* query, int k) {
  std::vector<std::pair<double, uint64_t>> scored;
  for (uint64_t id : live) {
    double d = 0;
    for (int j = 0; j < kDim; ++j) {
      const double diff = rows[id * kDim + j] - query[j];
      d += diff * diff;
    }
    scored.emplace_back(d, id);
  }
  std::partial_sort(scored.begin(), scored.begin() + k, scored.end());
  std::vector<uint64_t> ids;
  for (int i = 0; i < k; ++i) ids.push_back(scored[i].second);
  return ids;
}

class RouterServerTest : public testing::NatsClusterTest {
 protected:
  void SetUp() override {
    NatsClusterTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    nats_urls_ = absl::StrCat("--nats_urls=",
                              absl::StrJoin(cluster_->ClientUrls(), ","));
    for (int shard = 0; shard < kShards; ++shard) {
      for (int replica = 0; replica < 2; ++replica) {
        absl::StatusOr<ServerProcess> server = ServerProcess::Start(
            {"--role=shard", nats_urls_, absl::StrCat("--shard=", shard),
             absl::StrCat("--replica_name=r", replica), "--backend=cpu",
             "--drain_seconds=2"});
        ASSERT_TRUE(server.ok()) << server.status();
        replicas_.push_back(
            std::make_unique<ServerProcess>(*std::move(server)));
      }
    }
    absl::StatusOr<ServerProcess> router = ServerProcess::Start(
        {"--role=router", nats_urls_, absl::StrCat("--shards=", kShards),
         "--drain_seconds=2"});
    ASSERT_TRUE(router.ok()) << router.status();
    router_ = std::make_unique<ServerProcess>(*std::move(router));
    client::ClientOptions options;
    options.target = router_->target();
    options.call_timeout = absl::Seconds(30);
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  void TearDown() override {
    client_.reset();
    router_.reset();
    replicas_.clear();
    NatsClusterTest::TearDown();
  }

  // Creates "docs" (dim kDim, L2) through the router and upserts kRows
  // rows with ids 0..kRows-1 in batches.
  void CreateAndLoad() {
    v1::CollectionSchema schema;
    schema.set_name("docs");
    schema.set_dim(kDim);
    schema.set_metric(v1::METRIC_L2);
    ASSERT_TRUE(client_->CreateCollection(schema).ok());
    rows_ = RandomRows(kRows, 7);
    constexpr int kBatch = 500;
    for (int first = 0; first < kRows; first += kBatch) {
      std::vector<uint64_t> ids(kBatch);
      for (int i = 0; i < kBatch; ++i) ids[i] = first + i;
      absl::StatusOr<v1::UpsertResponse> ack =
          client_->Upsert("docs", ids,
                          std::span<const float>(rows_).subspan(
                              static_cast<size_t>(first) * kDim,
                              static_cast<size_t>(kBatch) * kDim));
      ASSERT_TRUE(ack.ok()) << ack.status();
      EXPECT_EQ(ack->rows(), kBatch);
      EXPECT_GT(ack->sequence(), 0u);
    }
    for (uint64_t id = 0; id < kRows; ++id) live_.insert(id);
  }

  // Waits until an exact search through the router sees `rows` live rows
  // (every shard's replicas have applied the writes and the router's view
  // has their heartbeats).
  void WaitForLiveRows(int64_t rows) {
    const absl::Time deadline = absl::Now() + kDeadline;
    int64_t seen = -1;
    while (absl::Now() < deadline) {
      absl::StatusOr<v1::SearchResponse> r = client_->Search(
          "docs", std::span<const float>(rows_).first(kDim), 1, 1);
      absl::StatusOr<v1::CollectionInfo> info =
          client_->DescribeCollection("docs");
      if (r.ok() && info.ok()) {
        seen = r->live_rows();
        if (seen == rows && info->live_rows() == rows) return;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    FAIL() << "live rows " << seen << ", want " << rows;
  }

  std::string nats_urls_;
  std::vector<std::unique_ptr<ServerProcess>> replicas_;  // shard-major
  std::unique_ptr<ServerProcess> router_;
  std::unique_ptr<Client> client_;
  std::vector<float> rows_;
  std::set<uint64_t> live_;
};

TEST_F(RouterServerTest, DdlWritesReadsAndSearchesThroughTheRouter) {
  ASSERT_NO_FATAL_FAILURE(CreateAndLoad());
  ASSERT_NO_FATAL_FAILURE(WaitForLiveRows(kRows));

  // DDL answers as a standalone server does.
  v1::CollectionSchema again;
  again.set_name("docs");
  again.set_dim(kDim);
  again.set_metric(v1::METRIC_L2);
  EXPECT_EQ(client_->CreateCollection(again).status().code(),
            absl::StatusCode::kAlreadyExists);
  absl::StatusOr<std::vector<v1::CollectionInfo>> listed =
      client_->ListCollections();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].schema().name(), "docs");
  EXPECT_EQ((*listed)[0].live_rows(), kRows);
  EXPECT_EQ(client_->DescribeCollection("nope").status().code(),
            absl::StatusCode::kNotFound);

  // Exact: the merged answer is brute force's, for every query.
  const std::vector<float> queries = RandomRows(50, 11);
  constexpr int kK = 10;
  absl::StatusOr<v1::SearchResponse> exact =
      client_->Search("docs", queries, kK, 1.0);
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_TRUE(exact->exact());
  EXPECT_EQ(exact->expected_recall(), 1.0);
  EXPECT_EQ(exact->live_rows(), kRows);
  ASSERT_EQ(exact->results_size(), 50);
  for (int q = 0; q < 50; ++q) {
    const std::vector<uint64_t> want =
        BruteForce(rows_, live_, &queries[q * kDim], kK);
    EXPECT_THAT(exact->results(q).ids(), ::testing::ElementsAreArray(want))
        << "query " << q;
  }

  // Approximate: the promise holds on the merged answer (expected recall
  // reported >= the target; measured recall within sampling noise of it).
  const std::vector<float> many = RandomRows(400, 13);
  for (double target : {0.8, 0.9}) {
    absl::StatusOr<v1::SearchResponse> approx =
        client_->Search("docs", many, kK, target);
    ASSERT_TRUE(approx.ok()) << approx.status();
    EXPECT_FALSE(approx->exact()) << "target " << target;
    EXPECT_GE(approx->expected_recall(), target);
    // PlanRecall answers for the cluster: the same shares of the bins.
    v1::PlanRecallRequest plan_request;
    plan_request.set_collection("docs");
    plan_request.set_k(kK);
    plan_request.set_recall_target(target);
    absl::StatusOr<v1::PlanRecallResponse> plan =
        client_->PlanRecall(plan_request);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->n(), kRows);
    EXPECT_EQ(approx->bins(), kShards * plan->bins_per_shard())
        << "target " << target;
    int64_t found = 0;
    for (int q = 0; q < 400; ++q) {
      const std::vector<uint64_t> want =
          BruteForce(rows_, live_, &many[q * kDim], kK);
      const std::set<uint64_t> got(approx->results(q).ids().begin(),
                                   approx->results(q).ids().end());
      for (uint64_t id : want) found += got.count(id);
    }
    const double measured = static_cast<double>(found) / (400.0 * kK);
    // 4000 neighbours: 4 sigma of a binomial at p ~ 0.8 is ~0.025.
    EXPECT_GE(measured, approx->expected_recall() - 0.03)
        << "target " << target;
  }

  // Get: every id from its shard, unknown ids not found, order kept.
  const std::vector<uint64_t> ids = {3, kRows + 5, 1, 2999};
  absl::StatusOr<v1::GetResponse> got = client_->Get("docs", ids);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->vectors_size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(got->vectors(i).id(), ids[i]);
    if (ids[i] >= kRows) {
      EXPECT_FALSE(got->vectors(i).found());
      continue;
    }
    ASSERT_TRUE(got->vectors(i).found()) << ids[i];
    EXPECT_THAT(got->vectors(i).values(),
                ::testing::ElementsAreArray(&rows_[ids[i] * kDim], kDim));
  }

  // Bad writes are refused before anything is published.
  const std::vector<uint64_t> dup = {1, 1};
  const std::vector<float> two(2 * kDim, 0.5f);
  EXPECT_EQ(client_->Upsert("docs", dup, two).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_
                ->Upsert("nope", {dup.data(), 1},
                         std::span<const float>(two).first(kDim))
                .status()
                .code(),
            absl::StatusCode::kNotFound);

  // Delete: gone from searches and reads once applied.
  std::vector<uint64_t> doomed;
  for (uint64_t id = 0; id < 100; ++id) doomed.push_back(id);
  absl::StatusOr<v1::DeleteResponse> deleted = client_->Delete("docs", doomed);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  for (uint64_t id : doomed) live_.erase(id);
  ASSERT_NO_FATAL_FAILURE(WaitForLiveRows(kRows - 100));
  absl::StatusOr<v1::SearchResponse> after =
      client_->Search("docs", queries, kK, 1.0);
  ASSERT_TRUE(after.ok()) << after.status();
  for (int q = 0; q < 50; ++q) {
    EXPECT_THAT(after->results(q).ids(),
                ::testing::ElementsAreArray(
                    BruteForce(rows_, live_, &queries[q * kDim], kK)));
  }

  // Drop: gone for searches and DDL.
  ASSERT_TRUE(client_->DropCollection("docs").ok());
  EXPECT_EQ(client_->Search("docs", queries, kK).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->DropCollection("docs").code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RouterServerTest, SearchesFailOverWhenAReplicaIsKilled) {
  ASSERT_NO_FATAL_FAILURE(CreateAndLoad());
  ASSERT_NO_FATAL_FAILURE(WaitForLiveRows(kRows));
  const std::vector<float> queries = RandomRows(8, 17);
  // kill -9 one replica of each shard: it stays listed until its member
  // record expires, so the router meets the dead address and must move on.
  ASSERT_TRUE(replicas_[0]->process.Stop(SIGKILL).ok());
  ASSERT_TRUE(replicas_[3]->process.Stop(SIGKILL).ok());
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<v1::SearchResponse> r =
        client_->Search("docs", queries, 10, 1.0);
    ASSERT_TRUE(r.ok()) << "search " << i << ": " << r.status();
    EXPECT_EQ(r->live_rows(), kRows);
    for (int q = 0; q < 8; ++q) {
      EXPECT_THAT(r->results(q).ids(),
                  ::testing::ElementsAreArray(
                      BruteForce(rows_, live_, &queries[q * kDim], 10)));
    }
  }

  // No replica of shard 1 left: a clear UNAVAILABLE naming the shard, never
  // an answer from shard 0 alone.
  ASSERT_TRUE(replicas_[2]->process.Stop(SIGKILL).ok());
  absl::StatusOr<v1::SearchResponse> r =
      client_->Search("docs", queries, 10, 1.0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("shard 1"));
}

// Read-your-writes: a search or read with the token of a write just
// acknowledged sees it at once, whichever replica answers; a strong read
// sees every acknowledged write without a token.
TEST_F(RouterServerTest, SessionAndStrongReadsSeeAcknowledgedWrites) {
  v1::CollectionSchema schema;
  schema.set_name("docs");
  schema.set_dim(kDim);
  schema.set_metric(v1::METRIC_L2);
  ASSERT_TRUE(client_->CreateCollection(schema).ok());
  const std::vector<float> rows = RandomRows(40, 23);
  auto search = [&](int i, v1::Consistency consistency,
                    const v1::ConsistencyToken* after) {
    v1::SearchRequest request;
    request.set_collection("docs");
    request.set_k(1);
    request.set_recall_target(1.0);
    request.mutable_queries()->Add(rows.begin() + i * kDim,
                                   rows.begin() + (i + 1) * kDim);
    request.set_consistency(consistency);
    if (after != nullptr) *request.mutable_after() = *after;
    grpc::ClientContext ctx;
    client_->Authenticate(&ctx);
    v1::SearchResponse response;
    const grpc::Status status =
        client_->stub().Search(&ctx, request, &response);
    EXPECT_TRUE(status.ok()) << i << ": " << status.error_message();
    return response;
  };
  v1::ConsistencyToken session;  // merged over this client's writes
  for (int i = 0; i < 40; ++i) {
    const std::vector<uint64_t> id = {static_cast<uint64_t>(i)};
    absl::StatusOr<v1::UpsertResponse> ack = client_->Upsert(
        "docs", id, std::span<const float>(rows).subspan(i * kDim, kDim));
    ASSERT_TRUE(ack.ok()) << ack.status();
    ASSERT_EQ(ack->token().shard_sequences_size(), kShards);
    session = client::MergeTokens(session, ack->token());
    const bool strong = i % 2 == 1;
    const v1::SearchResponse found =
        strong ? search(i, v1::CONSISTENCY_STRONG, nullptr)
               : search(i, v1::CONSISTENCY_SESSION, &session);
    ASSERT_EQ(found.results_size(), 1);
    ASSERT_EQ(found.results(0).ids_size(), 1) << "write " << i;
    EXPECT_EQ(found.results(0).ids(0), static_cast<uint64_t>(i))
        << (strong ? "strong" : "session") << " read of write " << i;
    EXPECT_EQ(found.live_rows(), i + 1);

    v1::GetRequest get;
    get.set_collection("docs");
    get.add_ids(i);
    get.set_consistency(v1::CONSISTENCY_SESSION);
    *get.mutable_after() = session;
    grpc::ClientContext ctx;
    v1::GetResponse got;
    ASSERT_TRUE(client_->stub().Get(&ctx, get, &got).ok());
    EXPECT_TRUE(got.vectors(0).found()) << "get of write " << i;
  }

  // A token of another shard count is refused, naming the collection.
  v1::ConsistencyToken wrong;
  wrong.add_shard_sequences(1);
  v1::SearchRequest request;
  request.set_collection("docs");
  request.set_k(1);
  request.mutable_queries()->Add(rows.begin(), rows.begin() + kDim);
  request.set_consistency(v1::CONSISTENCY_SESSION);
  *request.mutable_after() = wrong;
  grpc::ClientContext ctx;
  v1::SearchResponse response;
  const grpc::Status status = client_->stub().Search(&ctx, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("collection docs has 2"));
}

// A batch whose shard parts exceed one NATS message (1 MiB) is published
// as several and arrives whole.
TEST_F(RouterServerTest, BatchesLargerThanANatsMessageArriveWhole) {
  constexpr int kWide = 512;
  constexpr int kN = 1500;  // 3 MiB of rows: two messages per shard
  v1::CollectionSchema schema;
  schema.set_name("wide");
  schema.set_dim(kWide);
  schema.set_metric(v1::METRIC_INNER_PRODUCT);
  ASSERT_TRUE(client_->CreateCollection(schema).ok());
  std::vector<uint64_t> ids(kN);
  std::vector<float> rows(static_cast<size_t>(kN) * kWide);
  for (int i = 0; i < kN; ++i) {
    ids[i] = 10 * i + 1;
    for (int j = 0; j < kWide; ++j) rows[i * kWide + j] = (i + j % 7) * 0.01f;
  }
  absl::StatusOr<v1::UpsertResponse> ack = client_->Upsert("wide", ids, rows);
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->rows(), kN);
  v1::GetRequest get;
  get.set_collection("wide");
  get.mutable_ids()->Add(ids.begin(), ids.end());
  get.set_consistency(v1::CONSISTENCY_SESSION);
  *get.mutable_after() = ack->token();
  grpc::ClientContext ctx;
  v1::GetResponse got;
  const grpc::Status status = client_->stub().Get(&ctx, get, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(got.vectors_size(), kN);
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(got.vectors(i).found()) << "id " << ids[i];
    ASSERT_THAT(got.vectors(i).values(),
                ::testing::ElementsAreArray(&rows[i * kWide], kWide))
        << "id " << ids[i];
  }
}

TEST(RouterServerFlagsTest, ARouterNeedsACluster) {
  absl::StatusOr<ServerProcess> bad = ServerProcess::Start({"--role=router"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("--nats_urls"));
}

}  // namespace
}  // namespace peakknn
