// VectorSearchService in-process, on a real grpc::Server on a loopback port,
// against FakeCore (tests/fake_core.h) and driven through the real C++
// client: what the handlers do with the core's answers, its errors, its
// readiness and the timing of its acknowledgements. The real-process tests
// (server_integration_test.cc and others) cover the binary over the store.
#include "server/service.h"

#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/echo.h"
#include "base/notification.h"
#include "client/client.h"
#include "engine/recall_calculator.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "gtest/gtest.h"
#include "server/config.h"
#include "server/metrics.h"
#include "tests/fake_core.h"

namespace peakknn {
namespace {

using client::Client;
using client::ClientOptions;
using server::Metrics;
using server::ServerConfig;
using server::VectorSearchService;
using testing::CoreCall;
using testing::FakeCore;
using ::testing::HasSubstr;

constexpr int kDim = 4;

std::vector<float> Random(int64_t rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(rows) * kDim);
  for (float& x : v) x = normal(rng);
  return v;
}

std::vector<uint64_t> Iota(uint64_t first, int64_t count) {
  std::vector<uint64_t> ids(static_cast<size_t>(count));
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

// The value of the series `name` with exactly `labels` in the registry
// (a histogram's sample count); nullopt when there is no such series.
std::optional<double> MetricValue(
    Metrics& metrics, const std::string& name,
    const std::map<std::string, std::string>& labels = {}) {
  for (const prometheus::MetricFamily& family : metrics.registry().Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& m : family.metric) {
      std::map<std::string, std::string> got;
      for (const auto& label : m.label) got[label.name] = label.value;
      if (got != labels) continue;
      switch (family.type) {
        case prometheus::MetricType::Counter:
          return m.counter.value;
        case prometheus::MetricType::Gauge:
          return m.gauge.value;
        case prometheus::MetricType::Histogram:
          return static_cast<double>(m.histogram.sample_count);
        default:
          return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

// Polls `done` every 10 ms for up to 5 s.
template <typename Predicate>
bool Eventually(Predicate done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

class ServiceTest : public ::testing::Test {
 protected:
  void Start(const ServerConfig& config = {}) {
    service_ = std::make_unique<VectorSearchService>(config, &core_, &metrics_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(service_.get());
    // As peakknn-server sets them (server/main.cc).
    builder.SetMaxReceiveMessageSize(
        static_cast<int>(config.max_message_bytes));
    builder.SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    target_ = absl::StrCat("127.0.0.1:", port);
    ClientOptions options;
    options.target = target_;
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(options);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  void StartReady(const ServerConfig& config = {}) {
    core_.SetReady(absl::OkStatus());
    Start(config);
  }

  void TearDown() override {
    core_.ReleaseAcks();
    if (server_ != nullptr) {
      server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    }
    if (service_ != nullptr) service_->StopBatchers();
    client_.reset();
    server_.reset();
    service_.reset();
  }

  void Create(const std::string& name) {
    v1::CollectionSchema schema;
    schema.set_name(name);
    schema.set_dim(kDim);
    schema.set_metric(v1::METRIC_L2);
    absl::StatusOr<v1::CollectionInfo> info = client_->CreateCollection(schema);
    ASSERT_TRUE(info.ok()) << info.status();
  }

  // Upserts `rows` rows with ids first.. and returns their vectors.
  std::vector<float> Fill(const std::string& name, uint64_t first, int64_t rows,
                          uint32_t seed) {
    std::vector<float> data = Random(rows, seed);
    auto ack = client_->Upsert(name, Iota(first, rows), data);
    EXPECT_TRUE(ack.ok()) << ack.status();
    return data;
  }

  Metrics metrics_;
  FakeCore core_;
  std::unique_ptr<VectorSearchService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;  // host:port of server_
  std::unique_ptr<Client> client_;
};

TEST_F(ServiceTest, EveryRpcAnswersFromTheCore) {
  core_.SetStats({"fake-backend", 12345});
  ASSERT_NO_FATAL_FAILURE(StartReady());
  v1::CollectionSchema schema;
  schema.set_name("c");
  schema.set_dim(kDim);
  schema.set_metric(v1::METRIC_L2);
  absl::StatusOr<v1::CollectionInfo> info = client_->CreateCollection(schema);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->schema().name(), "c");
  EXPECT_EQ(info->schema().default_recall_target(), 0.95);
  EXPECT_EQ(core_.calls(CoreCall::kCreate), 1);

  // InsertStream: 4000 rows in 4 batches, each acknowledged in order.
  const std::vector<float> data = Random(4000, 1);
  client::InsertOptions insert;
  insert.batch_rows = 1000;
  absl::StatusOr<client::InsertSummary> summary =
      client_->InsertAll("c", Iota(0, 4000), data, insert);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->rows, 4000);
  EXPECT_EQ(summary->batches, 4);
  EXPECT_EQ(summary->last_sequence, 4u);

  const std::vector<float> two = Random(2, 2);
  absl::StatusOr<v1::UpsertResponse> upsert =
      client_->Upsert("c", Iota(4000, 2), two);
  ASSERT_TRUE(upsert.ok()) << upsert.status();
  EXPECT_EQ(upsert->sequence(), 5u);
  EXPECT_EQ(upsert->rows(), 2);
  EXPECT_EQ(upsert->durability(), v1::DURABILITY_FSYNC);

  std::vector<uint64_t> doomed = Iota(3000, 1000);
  doomed.push_back(9000);  // unknown ids are not counted
  doomed.push_back(9001);
  absl::StatusOr<v1::DeleteResponse> deleted = client_->Delete("c", doomed);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->deleted(), 1000);
  EXPECT_EQ(deleted->sequence(), 6u);

  auto list = client_->ListCollections();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].live_rows(), 3002);
  auto described = client_->DescribeCollection("c");
  ASSERT_TRUE(described.ok()) << described.status();
  EXPECT_EQ(described->rows(), 4002);
  EXPECT_EQ(described->live_rows(), 3002);
  EXPECT_EQ(described->last_sequence(), 6u);

  // Exact: a row's own vector finds it first.
  auto exact = client_->Search("c", std::span(&data[7 * kDim], kDim), 3, 1.0);
  ASSERT_TRUE(exact.ok()) << exact.status();
  ASSERT_EQ(exact->results_size(), 1);
  ASSERT_EQ(exact->results(0).ids_size(), 3);
  EXPECT_EQ(exact->results(0).ids(0), 7u);
  EXPECT_TRUE(exact->exact());
  EXPECT_EQ(exact->expected_recall(), 1.0);
  // Approximate: the recall estimate is for the live rows searched (3002),
  // not the slots scanned (4002).
  auto approx = client_->Search("c", std::span(&data[0], 2 * kDim), 10, 0.8);
  ASSERT_TRUE(approx.ok()) << approx.status();
  EXPECT_EQ(approx->results_size(), 2);
  ASSERT_FALSE(approx->exact());
  EXPECT_DOUBLE_EQ(approx->expected_recall(),
                   ExpectedRecall(3002, 10, approx->bins()));
  EXPECT_DOUBLE_EQ(approx->worst_rank_recall(),
                   WorstRankRecall(3002, 10, approx->bins()));

  const uint64_t get_ids[] = {7, 3500};
  auto got = client_->Get("c", get_ids);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->vectors_size(), 2);
  EXPECT_TRUE(got->vectors(0).found());
  EXPECT_THAT(got->vectors(0).values(),
              ::testing::ElementsAreArray(&data[7 * kDim], kDim));
  EXPECT_EQ(got->vectors(1).id(), 3500u);
  EXPECT_FALSE(got->vectors(1).found());

  v1::PlanRecallRequest plan_req;
  plan_req.set_n(1000000);
  plan_req.set_k(10);
  plan_req.set_recall_target(0.95);
  auto plan = client_->PlanRecall(plan_req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::StatusOr<RecallPlan> want = PlanRecall(1000000, 10, 0.95);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(plan->bins(), want->bins);
  EXPECT_EQ(plan->expected_recall(), want->expected_recall);
  plan_req.set_n(0);
  plan_req.set_collection("c");
  plan = client_->PlanRecall(plan_req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->n(), 3002);

  auto stats = client_->GetStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->backend(), "fake-backend");
  EXPECT_EQ(stats->backend_device_memory_bytes(), 12345u);
  EXPECT_EQ(stats->search_requests(), 2u);
  EXPECT_EQ(stats->search_queries(), 3u);
  EXPECT_EQ(stats->batches(), 2u);
  EXPECT_EQ(stats->inserted_rows(), 4002u);
  ASSERT_EQ(stats->collections_size(), 1);

  ASSERT_TRUE(client_->DropCollection("c").ok());
  EXPECT_EQ(client_->DescribeCollection("c").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ServiceTest, TheCoresErrorsReachTheClientUnchanged) {
  ASSERT_NO_FATAL_FAILURE(StartReady());
  ASSERT_NO_FATAL_FAILURE(Create("e"));
  std::vector<float> row = Fill("e", 0, 1, 3);
  const uint64_t id[] = {0};
  v1::CollectionSchema schema;
  schema.set_name("f");
  schema.set_dim(kDim);
  schema.set_metric(v1::METRIC_L2);
  v1::PlanRecallRequest plan;
  plan.set_collection("e");
  plan.set_k(1);
  plan.set_recall_target(0.9);

  struct Case {
    CoreCall call;
    absl::Status error;
    std::function<absl::Status()> rpc;
  };
  const std::vector<Case> cases = {
      {CoreCall::kCreate,
       absl::ResourceExhaustedError("create: no space left on device"),
       [&] { return client_->CreateCollection(schema).status(); }},
      {CoreCall::kDrop, absl::InternalError("drop: rename failed: EIO"),
       [&] { return client_->DropCollection("e"); }},
      {CoreCall::kList, absl::DataLossError("list: MANIFEST is corrupt"),
       [&] { return client_->ListCollections().status(); }},
      {CoreCall::kDescribe, absl::DataLossError("describe: checkpoint CRC"),
       [&] { return client_->DescribeCollection("e").status(); }},
      {CoreCall::kOpen, absl::FailedPreconditionError("the store is closed"),
       [&] { return client_->Search("e", row, 1).status(); }},
      {CoreCall::kSearch, absl::InternalError("backend: device lost"),
       [&] { return client_->Search("e", row, 1).status(); }},
      {CoreCall::kWrite, absl::ResourceExhaustedError("wal: disk full"),
       [&] { return client_->Upsert("e", id, row).status(); }},
      {CoreCall::kDelete, absl::InternalError("wal: write failed: EIO"),
       [&] { return client_->Delete("e", id).status(); }},
      {CoreCall::kGet, absl::AbortedError("get: snapshot gone"),
       [&] { return client_->Get("e", id).status(); }},
      {CoreCall::kOpen, absl::PermissionDeniedError("plan: no access"),
       [&] { return client_->PlanRecall(plan).status(); }},
  };
  for (const Case& c : cases) {
    core_.FailNext(c.call, c.error);
    EXPECT_EQ(c.rpc(), c.error);
  }
  // The core's own NOT_FOUND, as it worded it.
  EXPECT_EQ(client_->DescribeCollection("nope").status(),
            absl::NotFoundError("fake core: collection 'nope' does not exist"));
}

TEST_F(ServiceTest, UnavailableUntilTheCoreIsReady) {
  ASSERT_NO_FATAL_FAILURE(Start());  // the core is not ready
  const std::vector<float> row(kDim, 1.0f);
  const uint64_t id[] = {1};
  v1::CollectionSchema schema;
  schema.set_name("u");
  schema.set_dim(kDim);
  schema.set_metric(v1::METRIC_L2);
  v1::PlanRecallRequest plan;
  plan.set_collection("u");
  plan.set_k(1);
  plan.set_recall_target(0.9);
  const std::vector<std::pair<std::string, absl::Status>> answers = {
      {"CreateCollection", client_->CreateCollection(schema).status()},
      {"DropCollection", client_->DropCollection("u")},
      {"ListCollections", client_->ListCollections().status()},
      {"DescribeCollection", client_->DescribeCollection("u").status()},
      {"Search", client_->Search("u", row, 1).status()},
      {"Upsert", client_->Upsert("u", id, row).status()},
      {"Delete", client_->Delete("u", id).status()},
      {"Get", client_->Get("u", id).status()},
      {"GetStats", client_->GetStats().status()},
      {"PlanRecall", client_->PlanRecall(plan).status()},
      {"InsertStream", client_->InsertAll("u", id, row).status()},
  };
  for (const auto& [rpc, status] : answers) {
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << rpc;
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("fake core: not ready yet"))
        << rpc;
  }
  // The handlers asked Ready() and went no further.
  for (CoreCall call : {CoreCall::kCreate, CoreCall::kDrop, CoreCall::kList,
                        CoreCall::kDescribe, CoreCall::kOpen}) {
    EXPECT_EQ(core_.calls(call), 0) << static_cast<int>(call);
  }
  // PlanRecall without a collection needs no core.
  plan.clear_collection();
  plan.set_n(1000);
  EXPECT_TRUE(client_->PlanRecall(plan).ok());

  core_.SetReady(absl::OkStatus());
  EXPECT_TRUE(client_->CreateCollection(schema).ok());
}

TEST_F(ServiceTest, InsertStreamAcksInStreamOrderAndAFailedBatchFailsAlone) {
  ASSERT_NO_FATAL_FAILURE(StartReady());
  ASSERT_NO_FATAL_FAILURE(Create("s"));
  auto batch = [](uint64_t tag, uint64_t first, int64_t rows) {
    v1::InsertRequest req;
    if (tag == 1) req.set_collection("s");
    req.set_batch_tag(tag);
    for (uint64_t id : Iota(first, rows)) req.add_ids(id);
    for (float x : Random(rows, static_cast<uint32_t>(tag))) {
      req.add_vectors(x);
    }
    return req;
  };
  core_.HoldAcks();
  grpc::ClientContext ctx;
  auto stream = client_->stub().InsertStream(&ctx);
  ASSERT_TRUE(stream->Write(batch(1, 0, 10)));
  ASSERT_TRUE(core_.AwaitPendingAcks(1, absl::Seconds(5)));
  // Batch 2 is refused by admission (11 ids for 10 vectors); the core fails
  // batch 3 when it acknowledges it.
  core_.FailNext(CoreCall::kWrite,
                 absl::ResourceExhaustedError("fake core: the log is full"));
  v1::InsertRequest bad = batch(2, 100, 10);
  bad.add_ids(110);
  ASSERT_TRUE(stream->Write(bad));
  ASSERT_TRUE(stream->Write(batch(3, 10, 10)));
  ASSERT_TRUE(stream->Write(batch(4, 20, 10)));
  // Pipelined: three batches are in the core while none is acknowledged.
  ASSERT_TRUE(core_.AwaitPendingAcks(3, absl::Seconds(5)));
  ASSERT_TRUE(stream->WritesDone());
  // The core acknowledges the newest first; the stream still acks in order.
  core_.ReleaseAcks(FakeCore::AckOrder::kNewestFirst);

  std::vector<v1::InsertAck> acks;
  v1::InsertAck ack;
  while (stream->Read(&ack)) acks.push_back(ack);
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(acks.size(), 4u);
  for (size_t i = 0; i < acks.size(); ++i) {
    EXPECT_EQ(acks[i].batch_tag(), i + 1);
  }
  EXPECT_EQ(acks[0].code(), 0) << acks[0].error();
  EXPECT_EQ(acks[0].rows(), 10);
  EXPECT_EQ(acks[1].code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(acks[1].error(), HasSubstr("ids holds 11"));
  EXPECT_EQ(acks[2].code(),
            static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(acks[2].error(), "fake core: the log is full");
  EXPECT_EQ(acks[2].sequence(), 0u);
  EXPECT_EQ(acks[3].code(), 0) << acks[3].error();
  // Applied newest first: batch 4 was the core's first write.
  EXPECT_EQ(acks[3].sequence(), 1u);
  EXPECT_EQ(acks[0].sequence(), 2u);

  const uint64_t ids[] = {0, 10, 20, 100};
  auto got = client_->Get("s", ids);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->vectors(0).found());
  EXPECT_FALSE(got->vectors(1).found());
  EXPECT_TRUE(got->vectors(2).found());
  EXPECT_FALSE(got->vectors(3).found());
}

TEST_F(ServiceTest, UnaryWritesFinishOnlyWhenTheCoreAcknowledges) {
  ASSERT_NO_FATAL_FAILURE(StartReady());
  ASSERT_NO_FATAL_FAILURE(Create("w"));
  const std::vector<float> rows = Random(3, 4);
  const std::vector<uint64_t> ids = Iota(0, 3);

  core_.HoldAcks();
  Notification upserted;
  absl::StatusOr<v1::UpsertResponse> upsert;
  std::thread upsert_thread([&] {
    upsert = client_->Upsert("w", ids, rows);
    upserted.Notify();
  });
  ASSERT_TRUE(core_.AwaitPendingAcks(1, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(upserted.HasBeenNotified());
  core_.ReleaseAcks();
  upsert_thread.join();
  ASSERT_TRUE(upsert.ok()) << upsert.status();
  EXPECT_EQ(upsert->sequence(), 1u);
  EXPECT_EQ(upsert->rows(), 3);

  core_.HoldAcks();
  Notification deleted;
  absl::StatusOr<v1::DeleteResponse> del;
  std::thread delete_thread([&] {
    del = client_->Delete("w", ids);
    deleted.Notify();
  });
  ASSERT_TRUE(core_.AwaitPendingAcks(1, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(deleted.HasBeenNotified());
  core_.ReleaseAcks();
  delete_thread.join();
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->sequence(), 2u);
  EXPECT_EQ(del->deleted(), 3);
}

TEST_F(ServiceTest, ASearchWhoseDeadlinePassesInTheQueueIsNotComputed) {
  ServerConfig config;
  config.max_batch = 1000;
  config.max_delay_us = 500000;  // a lone request waits 0.5 s for company
  ASSERT_NO_FATAL_FAILURE(StartReady(config));
  ASSERT_NO_FATAL_FAILURE(Create("d"));
  Fill("d", 0, 10, 5);

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(100));
  v1::SearchRequest req;
  req.set_collection("d");
  for (int i = 0; i < kDim; ++i) req.add_queries(0.5f);
  req.set_k(3);
  v1::SearchResponse resp;
  EXPECT_EQ(client_->stub().Search(&ctx, req, &resp).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  const std::map<std::string, std::string> d = {{"collection", "d"}};
  ASSERT_TRUE(Eventually([&] {
    return MetricValue(metrics_, "peakknn_search_expired_total", d) == 1.0;
  }));
  EXPECT_EQ(core_.calls(CoreCall::kSearch), 0);
  EXPECT_EQ(MetricValue(metrics_, "peakknn_rpc_requests_total",
                        {{"method", "Search"}, {"code", "DEADLINE_EXCEEDED"}}),
            1.0);
  EXPECT_EQ(metrics_.batches(), 0u);
}

TEST_F(ServiceTest, ARecreatedCollectionIsSearchedThroughANewBatcher) {
  ASSERT_NO_FATAL_FAILURE(StartReady());
  ASSERT_NO_FATAL_FAILURE(Create("r"));
  const std::vector<float> first = Fill("r", 1, 1, 6);
  const int64_t opens = core_.calls(CoreCall::kOpen);
  auto found = client_->Search("r", first, 5);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(found->results(0).ids(), ::testing::ElementsAre(1u));
  // One lookup per search: the batcher searches its handle.
  EXPECT_EQ(core_.calls(CoreCall::kOpen), opens + 1);
  std::shared_ptr<testing::FakeCollection> old = core_.Find("r");
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(old->searches(), 1);

  ASSERT_TRUE(client_->DropCollection("r").ok());
  ASSERT_NO_FATAL_FAILURE(Create("r"));  // same name and dim
  Fill("r", 2, 1, 7);
  found = client_->Search("r", first, 5);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(found->results(0).ids(), ::testing::ElementsAre(2u));
  std::shared_ptr<testing::FakeCollection> now = core_.Find("r");
  ASSERT_NE(now, old);
  EXPECT_EQ(now->searches(), 1);
  EXPECT_EQ(old->searches(), 1);
}

TEST_F(ServiceTest, DroppingACollectionCompletesItsQueuedSearches) {
  ServerConfig config;
  config.max_batch = 1000;
  config.max_delay_us = 2000000;  // queued until the drop drains the batcher
  ASSERT_NO_FATAL_FAILURE(StartReady(config));
  ASSERT_NO_FATAL_FAILURE(Create("q"));
  const std::vector<float> row = Fill("q", 9, 1, 8);
  absl::StatusOr<v1::SearchResponse> queued;
  std::thread search([&] { queued = client_->Search("q", row, 1); });
  ASSERT_TRUE(Eventually([&] {
    return MetricValue(metrics_, "peakknn_search_queue_depth_queries",
                       {{"collection", "q"}}) == 1.0;
  }));
  const absl::Time drop = absl::Now();
  ASSERT_TRUE(client_->DropCollection("q").ok());
  search.join();
  EXPECT_LT(absl::Now() - drop, absl::Seconds(1));  // not the 2 s delay
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_THAT(queued->results(0).ids(), ::testing::ElementsAre(9u));
}

TEST_F(ServiceTest, MetricsRecordRpcsBatchesAndWrites) {
  core_.SetStats({"fake-backend", 4096});
  ASSERT_NO_FATAL_FAILURE(StartReady());
  ASSERT_NO_FATAL_FAILURE(Create("m"));
  const std::vector<float> data = Random(100, 9);
  ASSERT_TRUE(client_->InsertAll("m", Iota(0, 100), data).ok());
  const std::map<std::string, std::string> m = {{"collection", "m"}};
  EXPECT_EQ(MetricValue(metrics_, "peakknn_inserted_rows_total", m), 100.0);
  EXPECT_EQ(MetricValue(metrics_, "peakknn_collection_rows", m), 100.0);
  EXPECT_EQ(MetricValue(metrics_, "peakknn_collection_live_rows", m), 100.0);
  EXPECT_EQ(MetricValue(metrics_, "peakknn_backend_device_memory_bytes"),
            4096.0);

  core_.SetStats({"fake-backend", 8192});
  ASSERT_TRUE(client_->Search("m", std::span(data).first(2 * kDim), 3).ok());
  EXPECT_EQ(MetricValue(metrics_, "peakknn_search_batch_queries"), 1.0);
  EXPECT_EQ(MetricValue(metrics_, "peakknn_search_queries_total"), 2.0);
  EXPECT_EQ(MetricValue(metrics_, "peakknn_search_queue_depth_queries", m),
            0.0);
  EXPECT_EQ(MetricValue(metrics_, "peakknn_backend_device_memory_bytes"),
            8192.0);
  EXPECT_EQ(metrics_.batches(), 1u);

  ASSERT_TRUE(client_->Delete("m", Iota(0, 10)).ok());
  EXPECT_EQ(MetricValue(metrics_, "peakknn_collection_live_rows", m), 90.0);
  EXPECT_EQ(client_->DescribeCollection("nope").status().code(),
            absl::StatusCode::kNotFound);
  for (const auto& [method, code] :
       std::vector<std::pair<std::string, std::string>>{
           {"CreateCollection", "OK"},
           {"InsertStream", "OK"},
           {"Search", "OK"},
           {"Delete", "OK"},
           {"DescribeCollection", "NOT_FOUND"}}) {
    EXPECT_EQ(MetricValue(metrics_, "peakknn_rpc_requests_total",
                          {{"method", method}, {"code", code}}),
              1.0)
        << method << " " << code;
  }

  ASSERT_TRUE(client_->DropCollection("m").ok());
  EXPECT_EQ(MetricValue(metrics_, "peakknn_collection_rows", m), std::nullopt);
}

// ---- Issue 12: requests that broke the contract.

// Item 8: a collection name that breaks the rules (1-64 of [A-Za-z0-9_-],
// starting with a letter or digit) is refused by every RPC before the core
// is asked, and the message quotes a bounded prefix of it: a 100 KB name
// quoted whole made the status trailer too big for a default client.
TEST_F(ServiceTest, EveryRpcRefusesABadNameAndQuotesItBounded) {
  ASSERT_NO_FATAL_FAILURE(StartReady());
  const std::vector<float> row(kDim, 1.0f);
  const uint64_t id[] = {1};
  for (const std::string& name :
       {std::string(100 * 1024, 'x'), std::string(65, 'a'), std::string("a/b"),
        std::string("-a"), std::string("caf\xc3\xa9")}) {
    v1::CollectionSchema schema;
    schema.set_name(name);
    schema.set_dim(kDim);
    schema.set_metric(v1::METRIC_L2);
    v1::PlanRecallRequest plan;
    plan.set_collection(name);
    plan.set_k(1);
    plan.set_recall_target(0.9);
    const std::vector<std::pair<std::string, absl::Status>> answers = {
        {"CreateCollection", client_->CreateCollection(schema).status()},
        {"DropCollection", client_->DropCollection(name)},
        {"DescribeCollection", client_->DescribeCollection(name).status()},
        {"Search", client_->Search(name, row, 1).status()},
        {"Upsert", client_->Upsert(name, id, row).status()},
        {"Delete", client_->Delete(name, id).status()},
        {"Get", client_->Get(name, id).status()},
        {"PlanRecall", client_->PlanRecall(plan).status()},
        {"InsertStream", client_->InsertAll(name, id, row).status()},
    };
    for (const auto& [rpc, status] : answers) {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
          << rpc << " " << name.size() << ": "
          << status.message().substr(0, 200);
      EXPECT_LT(status.message().size(), 400u) << rpc;
      EXPECT_THAT(std::string(status.message()),
                  HasSubstr(absl::CEscape(name.substr(0, kMaxEchoedBytes / 2))))
          << rpc;
    }
  }
  for (CoreCall call : {CoreCall::kCreate, CoreCall::kDrop, CoreCall::kDescribe,
                        CoreCall::kOpen}) {
    EXPECT_EQ(core_.calls(call), 0) << static_cast<int>(call);
  }
}

// Item 8, within a stream: a later message naming another collection is
// refused alone, with the name quoted bounded.
TEST_F(ServiceTest, InsertStreamQuotesAMismatchedNameBounded) {
  ASSERT_NO_FATAL_FAILURE(StartReady());
  ASSERT_NO_FATAL_FAILURE(Create("s"));
  grpc::ClientContext ctx;
  auto stream = client_->stub().InsertStream(&ctx);
  v1::InsertRequest req;
  req.set_collection("s");
  req.add_ids(1);
  for (int i = 0; i < kDim; ++i) req.add_vectors(1.0f);
  ASSERT_TRUE(stream->Write(req));
  req.set_collection(std::string(100 * 1024, 'y'));
  req.set_ids(0, 2);
  ASSERT_TRUE(stream->Write(req));
  req.set_collection("t");  // valid, but another collection
  req.set_ids(0, 3);
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->WritesDone());
  std::vector<v1::InsertAck> acks;
  v1::InsertAck ack;
  while (stream->Read(&ack)) acks.push_back(ack);
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks[0].code(), 0) << acks[0].error();
  EXPECT_EQ(acks[1].code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_LT(acks[1].error().size(), 400u);
  EXPECT_EQ(acks[2].code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(acks[2].error(), HasSubstr("open another stream"));
}

// Item 12: messages print the value the client sent: a double exactly (not
// rounded to "1"), an unsigned field before any narrowing cast.
TEST_F(ServiceTest, MessagesPrintTheValuesSent) {
  ASSERT_NO_FATAL_FAILURE(StartReady());
  ASSERT_NO_FATAL_FAILURE(Create("p"));
  auto plan_error = [&](auto set) {
    v1::PlanRecallRequest req;
    req.set_n(1000);
    req.set_k(10);
    req.set_recall_target(0.9);
    set(req);
    absl::StatusOr<v1::PlanRecallResponse> plan = client_->PlanRecall(req);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(plan.status().message());
  };
  EXPECT_THAT(plan_error([](v1::PlanRecallRequest& r) {
                r.set_recall_target(1.0000001);
              }),
              HasSubstr("recall_target=1.0000001"));
  EXPECT_THAT(plan_error([](v1::PlanRecallRequest& r) {
                r.set_per_bin(uint32_t{1} << 31);
              }),
              HasSubstr("per_bin=2147483648"));
  EXPECT_THAT(
      plan_error([](v1::PlanRecallRequest& r) { r.set_shards(4294967295u); }),
      HasSubstr("shards=4294967295"));
  const std::vector<float> row(kDim, 1.0f);
  EXPECT_THAT(
      std::string(client_->Search("p", row, 1, 1.0000001).status().message()),
      HasSubstr("recall_target=1.0000001"));
  v1::CollectionSchema schema;
  schema.set_name("q");
  schema.set_dim(kDim);
  schema.set_metric(v1::METRIC_L2);
  schema.set_default_recall_target(1.0000001);
  EXPECT_THAT(std::string(client_->CreateCollection(schema).status().message()),
              HasSubstr("1.0000001"));
}

// Item 5: a Get whose answer cannot fit --max_message_bytes is refused
// before any vector is copied (it used to build the whole answer, then fail
// to send it).
TEST_F(ServiceTest, AGetTooBigToAnswerIsRefusedUpFront) {
  ServerConfig config;
  config.max_message_bytes = 1 << 16;
  ASSERT_NO_FATAL_FAILURE(StartReady(config));
  v1::CollectionSchema schema;
  schema.set_name("g");
  schema.set_dim(1024);  // 4 KiB per vector
  schema.set_metric(v1::METRIC_L2);
  ASSERT_TRUE(client_->CreateCollection(schema).ok());
  const uint64_t id[] = {7};
  ASSERT_TRUE(client_->Upsert("g", id, std::vector<float>(1024, 1.0f)).ok());
  const std::vector<uint64_t> fits(15, 7);  // the same id, 15 times
  auto got = client_->Get("g", fits);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->vectors_size(), 15);
  const int64_t gets = core_.calls(CoreCall::kGet);
  const std::vector<uint64_t> too_many(17, 7);
  got = client_->Get("g", too_many);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(got.status().message()),
              HasSubstr("--max_message_bytes=65536"));
  EXPECT_EQ(core_.calls(CoreCall::kGet), gets);
}

// Item 4: PlanRecall's k is bounded by --max_k and per_bin likewise (a
// bin keeping k rows is exact), so no request can make the calculator run
// for minutes inside a handler.
TEST_F(ServiceTest, PlanRecallBoundsKAndPerBin) {
  ServerConfig config;
  config.max_k = 100;
  ASSERT_NO_FATAL_FAILURE(StartReady(config));
  v1::PlanRecallRequest req;
  req.set_n(1000000000000);
  req.set_k(101);
  req.set_recall_target(0.95);
  absl::StatusOr<v1::PlanRecallResponse> plan = client_->PlanRecall(req);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("--max_k"));
  req.set_k(100);
  req.set_per_bin(101);
  plan = client_->PlanRecall(req);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("per_bin=101"));
  req.set_per_bin(100);
  plan = client_->PlanRecall(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->expected_recall(), 1.0);  // every bin keeps all k
}

// Writes raw messages on one InsertStream and reads every ack (the C++
// client can only send well-formed InsertRequests).
class RawInsertStream
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  RawInsertStream(grpc::GenericStub* stub, std::vector<std::string> messages)
      : messages_(std::move(messages)) {
    stub->PrepareBidiStreamingCall(&ctx_,
                                   "/peakknn.v1.VectorSearch/InsertStream",
                                   grpc::StubOptions(), this);
    StartRead(&read_);
    WriteNext();
    StartCall();
  }

  // The stream's status; `acks` holds the acks received, in order.
  grpc::Status Await(std::vector<v1::InsertAck>* acks) {
    done_.WaitForNotification();
    *acks = acks_;
    return status_;
  }

  void OnWriteDone(bool ok) override {
    if (ok) WriteNext();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    v1::InsertAck ack;
    if (grpc::SerializationTraits<v1::InsertAck>::Deserialize(&read_, &ack)
            .ok()) {
      acks_.push_back(ack);
    }
    StartRead(&read_);
  }
  void OnDone(const grpc::Status& status) override {
    status_ = status;
    done_.Notify();
  }

 private:
  void WriteNext() {
    if (next_ == messages_.size()) {
      StartWritesDone();
      return;
    }
    grpc::Slice slice(messages_[next_++]);
    write_ = grpc::ByteBuffer(&slice, 1);
    StartWrite(&write_);
  }

  const std::vector<std::string> messages_;
  size_t next_ = 0;
  grpc::ClientContext ctx_;
  grpc::ByteBuffer write_;
  grpc::ByteBuffer read_;
  std::vector<v1::InsertAck> acks_;  // written by reads, read after done_
  grpc::Status status_;
  Notification done_;
};

// Item 11, within a stream: a message that does not parse is acked with
// INVALID_ARGUMENT and the stream goes on.
TEST_F(ServiceTest, AnUnparsableInsertStreamMessageFailsAlone) {
  ASSERT_NO_FATAL_FAILURE(StartReady());
  ASSERT_NO_FATAL_FAILURE(Create("z"));
  v1::InsertRequest batch;
  batch.set_collection("z");
  batch.set_batch_tag(1);
  batch.add_ids(1);
  for (int i = 0; i < kDim; ++i) batch.add_vectors(1.0f);
  const std::string first = batch.SerializeAsString();
  batch.set_batch_tag(3);
  batch.set_ids(0, 3);
  const std::string third = batch.SerializeAsString();
  grpc::GenericStub stub(
      grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
  RawInsertStream stream(&stub,
                         {first, std::string("\xff\xff\xff\xff", 4), third});
  std::vector<v1::InsertAck> acks;
  const grpc::Status status = stream.Await(&acks);
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks[0].batch_tag(), 1u);
  EXPECT_EQ(acks[0].code(), 0) << acks[0].error();
  EXPECT_EQ(acks[1].code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(acks[1].error(), HasSubstr("peakknn.v1.InsertRequest"));
  EXPECT_EQ(acks[2].batch_tag(), 3u);
  EXPECT_EQ(acks[2].code(), 0) << acks[2].error();
}

// Item 11: bytes that are not the method's request message (garbage, a
// truncated message, invalid UTF-8 in a string field) are answered
// INVALID_ARGUMENT naming the message type; gRPC's callback API would
// answer UNIMPLEMENTED with no message.
TEST_F(ServiceTest, UnparsableRequestsAreInvalidArguments) {
  ASSERT_NO_FATAL_FAILURE(StartReady());
  ASSERT_NO_FATAL_FAILURE(Create("x"));
  v1::SearchRequest search;
  search.set_collection("x");
  for (int i = 0; i < 8 * kDim; ++i) search.add_queries(1.0f);
  search.set_k(1);
  const std::string whole = search.SerializeAsString();
  // Field 1 (collection), 2 bytes that are not UTF-8.
  const std::string bad_utf8("\x0a\x02\xff\xfe", 4);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/peakknn.v1.VectorSearch/Search", std::string("\xff\xff\xff\xff", 4)},
      {"/peakknn.v1.VectorSearch/Search", whole.substr(0, whole.size() - 5)},
      {"/peakknn.v1.VectorSearch/Search", bad_utf8},
      {"/peakknn.v1.VectorSearch/DescribeCollection", bad_utf8},
      {"/peakknn.v1.VectorSearch/Upsert", bad_utf8},
      {"/peakknn.v1.VectorSearch/GetStats", std::string("\xff", 1)},
  };
  grpc::GenericStub stub(
      grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
  for (const auto& [method, bytes] : cases) {
    SCOPED_TRACE(method);
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext ctx;
    grpc::Status status;
    Notification done;
    stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("cannot parse"));
  }
  EXPECT_EQ(core_.calls(CoreCall::kOpen), 0);
}

}  // namespace
}  // namespace peakknn
