// VectorSearchService in-process (tests/service_test_fixture.h): requests
// that broke the API contract (issue 12), each refused before the core is
// asked, with a message that names what is wrong and quotes it bounded.
#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
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
#include "server/service.h"
#include "tests/service_test_fixture.h"

namespace peakknn {
namespace {

using server::ServerConfig;
using testing::CoreCall;
using ::testing::HasSubstr;
using testing::ServiceTest;

constexpr int kDim = testing::kServiceTestDim;

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

// A search names its plan one way, bins or recall_target, and a bin count
// is not negative; the message says which and what was sent.
TEST_F(ServiceTest, SearchBinsAreCheckedAndNotMixedWithATarget) {
  ASSERT_NO_FATAL_FAILURE(StartReady());
  ASSERT_NO_FATAL_FAILURE(Create("b"));
  v1::SearchRequest req;
  req.set_collection("b");
  req.set_k(1);
  for (int i = 0; i < kDim; ++i) req.add_queries(1.0f);
  auto search = [&] {
    grpc::ClientContext ctx;
    v1::SearchResponse response;
    return client_->stub().Search(&ctx, req, &response);
  };
  req.set_bins(-1);
  grpc::Status status = search();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("bins=-1"));
  req.set_bins(32);
  req.set_recall_target(0.9);
  status = search();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("bins=32 and recall_target=0.9: set at most one"));
  req.set_recall_target(0);
  status = search();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// A local store reads its latest state: every consistency mode is
// served, writes carry their log sequence as a token, and the replica-only
// min_applied_sequence is refused naming it.
TEST_F(ServiceTest, ConsistencyModesOnALocalStore) {
  ASSERT_NO_FATAL_FAILURE(StartReady());
  ASSERT_NO_FATAL_FAILURE(Create("c"));
  const std::vector<uint64_t> id = {7};
  const std::vector<float> row(kDim, 1.0f);
  absl::StatusOr<v1::UpsertResponse> ack = client_->Upsert("c", id, row);
  ASSERT_TRUE(ack.ok()) << ack.status();
  ASSERT_EQ(ack->token().shard_sequences_size(), 1);
  EXPECT_EQ(ack->token().shard_sequences(0), ack->sequence());

  v1::SearchRequest req;
  req.set_collection("c");
  req.set_k(1);
  req.mutable_queries()->Add(row.begin(), row.end());
  auto search = [&](v1::SearchResponse* response) {
    grpc::ClientContext ctx;
    return client_->stub().Search(&ctx, req, response);
  };
  v1::SearchResponse response;
  req.set_consistency(v1::CONSISTENCY_SESSION);
  grpc::Status status = search(&response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("needs `after`"));
  *req.mutable_after() = ack->token();
  status = search(&response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results(0).ids_size(), 1);
  EXPECT_EQ(response.results(0).ids(0), 7u);
  req.set_consistency(v1::CONSISTENCY_STRONG);
  EXPECT_TRUE(search(&response).ok());
  req.set_consistency(static_cast<v1::Consistency>(9));
  status = search(&response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("consistency=9"));
  req.set_consistency(v1::CONSISTENCY_EVENTUAL);
  req.set_min_applied_sequence(3);
  status = search(&response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("min_applied_sequence=3"));

  v1::GetRequest get;
  get.set_collection("c");
  get.add_ids(7);
  get.set_min_applied_sequence(3);
  grpc::ClientContext ctx;
  v1::GetResponse got;
  status = client_->stub().Get(&ctx, get, &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
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
