// VectorSearchService in-process, on a real grpc::Server on a loopback port,
// against FakeCore (tests/fake_core.h) and driven through the real C++
// client (tests/service_test_fixture.h): what the handlers do with the core's
// answers, its errors, its readiness and the timing of its
// acknowledgements. service_contract_test.cc has the requests that broke
// the contract (issue 12); the real-process tests (server_integration_test.cc
// and others) cover the binary over the store.
#include "server/service.h"

#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "base/notification.h"
#include "client/client.h"
#include "engine/recall_calculator.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/config.h"
#include "server/metrics.h"
#include "tests/service_test_fixture.h"

namespace peakknn {
namespace {

using server::ServerConfig;
using testing::CoreCall;
using testing::Eventually;
using testing::FakeCore;
using ::testing::HasSubstr;
using testing::Iota;
using testing::MetricValue;
using testing::RandomRows;
using testing::ServiceTest;

constexpr int kDim = testing::kServiceTestDim;

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
  const std::vector<float> data = RandomRows(4000, 1);
  client::InsertOptions insert;
  insert.batch_rows = 1000;
  absl::StatusOr<client::InsertSummary> summary =
      client_->InsertAll("c", Iota(0, 4000), data, insert);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->rows, 4000);
  EXPECT_EQ(summary->batches, 4);
  EXPECT_EQ(summary->last_sequence, 4u);

  const std::vector<float> two = RandomRows(2, 2);
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
    for (float x : RandomRows(rows, static_cast<uint32_t>(tag))) {
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
  const std::vector<float> rows = RandomRows(3, 4);
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
  const std::vector<float> data = RandomRows(100, 9);
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

}  // namespace
}  // namespace peakknn
