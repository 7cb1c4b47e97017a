// Integration tests: the real peakknn-server binary on a loopback port, driven
// through the real C++ client (tests/server_test_fixture.h): the API end to
// end, collections, reads and writes, validation and limits, recall plans.

#include <limits>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "client/client.h"
#include "engine/recall_calculator.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"
#include "tests/server_test_fixture.h"
namespace peakknn {
namespace {

using peakknn::testing::BruteForce;
using peakknn::testing::ServerTest;
using ::testing::HasSubstr;

constexpr int kDim = testing::kServerTestDim;

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

// A search with a bin count (what a router sends a shard) scans that many
// bins and reports their recall over the server's rows.
TEST_F(ServerTest, SearchWithABinCountReportsItsRecall) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_NO_FATAL_FAILURE(CreateAndFill("v", 2000));
  v1::SearchRequest req;
  req.set_collection("v");
  req.set_k(10);
  req.set_bins(100);
  req.mutable_queries()->Add(data_.begin(), data_.begin() + kDim);
  grpc::ClientContext ctx;
  v1::SearchResponse response;
  const grpc::Status status = client_->stub().Search(&ctx, req, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(response.exact());
  EXPECT_EQ(response.bins(), 112);  // a multiple of 16
  EXPECT_DOUBLE_EQ(response.expected_recall(), ExpectedRecall(2000, 10, 112));
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).ids(0), 0u);  // the query is row 0
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

}  // namespace
}  // namespace peakknn
