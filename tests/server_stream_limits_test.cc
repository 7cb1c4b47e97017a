// Issue 12 item 7, against the real server: how many InsertStreams may be
// open, when an idle one is closed, and the per-connection stream and
// idle-connection limits (server/insert_stream_registry.h, server/main.cc).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "peakknn/v1/vector_search.grpc.pb.h"
#include "tests/server_process.h"

namespace peakknn {
namespace {

using peakknn::testing::ServerProcess;
using ::testing::HasSubstr;
using Stream = grpc::ClientReaderWriter<v1::InsertRequest, v1::InsertAck>;

class StreamLimitsTest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& flags) {
    std::vector<std::string> all = {"--drain_seconds=1"};
    all.insert(all.end(), flags.begin(), flags.end());
    absl::StatusOr<ServerProcess> server = ServerProcess::Start(all);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::make_unique<ServerProcess>(std::move(*server));
    channel_ = NewChannel();
    stub_ = v1::VectorSearch::NewStub(channel_);
    ASSERT_NO_FATAL_FAILURE(CreateCollection("c", 2));
  }

  void CreateCollection(const std::string& name, int dim) {
    grpc::ClientContext ctx;
    v1::CreateCollectionRequest create;
    create.mutable_schema()->set_name(name);
    create.mutable_schema()->set_dim(dim);
    create.mutable_schema()->set_metric(v1::METRIC_L2);
    v1::CreateCollectionResponse created;
    ASSERT_TRUE(stub_->CreateCollection(&ctx, create, &created).ok());
  }

  // The server's peakknn_inflight_bytes gauge, or -1 when unreadable.
  double InflightBytes() const {
    absl::StatusOr<std::string> page =
        peakknn::testing::HttpGet(server_->metrics_port, "/metrics");
    if (!page.ok()) return -1;
    const size_t at = page->find("\npeakknn_inflight_bytes ");
    if (at == std::string::npos) return -1;
    return std::stod(page->substr(at + 24));
  }

  // Polls InflightBytes() for up to 5 s until `done` holds for it.
  template <typename Done>
  bool WaitForInflight(Done done) const {
    for (int i = 0; i < 200 && !done(InflightBytes()); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return done(InflightBytes());
  }

  // A channel of its own: a new connection to the server.
  std::shared_ptr<grpc::Channel> NewChannel() {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    return grpc::CreateCustomChannel(server_->target(),
                                     grpc::InsecureChannelCredentials(), args);
  }

  // Sends one row (id) on `stream` and reads its ack.
  static v1::InsertAck SendRow(Stream* stream, uint64_t id) {
    v1::InsertRequest request;
    request.set_collection("c");
    request.add_ids(id);
    request.add_vectors(static_cast<float>(id));
    request.add_vectors(0);
    request.set_batch_tag(id);
    EXPECT_TRUE(stream->Write(request));
    v1::InsertAck ack;
    EXPECT_TRUE(stream->Read(&ack));
    return ack;
  }

  int64_t LiveRows() {
    grpc::ClientContext ctx;
    v1::DescribeCollectionRequest request;
    request.set_name("c");
    v1::DescribeCollectionResponse response;
    EXPECT_TRUE(stub_->DescribeCollection(&ctx, request, &response).ok());
    return response.info().live_rows();
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    absl::StatusOr<int> rc = server_->process.Stop(SIGTERM);
    ASSERT_TRUE(rc.ok()) << rc.status();
    EXPECT_EQ(*rc, 0) << server_->Log();
  }

  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VectorSearch::Stub> stub_;
};

TEST_F(StreamLimitsTest, StreamsBeyondTheLimitAreRefusedUntilOneCloses) {
  ASSERT_NO_FATAL_FAILURE(Start({"--max_insert_streams=2"}));
  grpc::ClientContext ctx1, ctx2, ctx3, ctx4;
  std::unique_ptr<Stream> s1 = stub_->InsertStream(&ctx1);
  std::unique_ptr<Stream> s2 = stub_->InsertStream(&ctx2);
  EXPECT_EQ(SendRow(s1.get(), 1).code(), 0);
  EXPECT_EQ(SendRow(s2.get(), 2).code(), 0);

  std::unique_ptr<Stream> s3 = stub_->InsertStream(&ctx3);
  v1::InsertAck ack;
  EXPECT_FALSE(s3->Read(&ack));
  grpc::Status refused = s3->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("--max_insert_streams=2"));

  s1->WritesDone();
  EXPECT_TRUE(s1->Finish().ok());
  // The slot is free once the server has ended the call: retry briefly.
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<Stream> s4;
  v1::InsertAck ack4;
  for (int attempt = 0; attempt < 50; ++attempt) {
    ctx = std::make_unique<grpc::ClientContext>();
    s4 = stub_->InsertStream(ctx.get());
    v1::InsertRequest request;
    request.set_collection("c");
    request.add_ids(4);
    request.add_vectors(4);
    request.add_vectors(0);
    s4->Write(request);
    if (s4->Read(&ack4)) break;
    EXPECT_EQ(s4->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    s4.reset();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(s4, nullptr) << "no stream admitted after one closed";
  EXPECT_EQ(ack4.code(), 0) << ack4.error();
  s4->WritesDone();
  EXPECT_TRUE(s4->Finish().ok());
  s2->WritesDone();
  EXPECT_TRUE(s2->Finish().ok());
  EXPECT_EQ(LiveRows(), 3);
}

TEST_F(StreamLimitsTest, AnIdleStreamIsClosedAndItsAckedRowsStay) {
  ASSERT_NO_FATAL_FAILURE(Start({"--insert_stream_idle_s=1"}));
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = stub_->InsertStream(&ctx);
  // Busy for 2 s, one batch every 0.25 s: activity keeps it open.
  for (uint64_t id = 1; id <= 8; ++id) {
    EXPECT_EQ(SendRow(stream.get(), id).code(), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  // Then idle: the server ends the call.
  v1::InsertAck ack;
  const auto idle_start = std::chrono::steady_clock::now();
  EXPECT_FALSE(stream->Read(&ack));
  const double waited = std::chrono::duration<double>(
                            std::chrono::steady_clock::now() - idle_start)
                            .count();
  EXPECT_GT(waited, 0.5);
  EXPECT_LT(waited, 20);
  grpc::Status closed = stream->Finish();
  EXPECT_EQ(closed.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(closed.error_message(), HasSubstr("--insert_stream_idle_s"));
  EXPECT_EQ(LiveRows(), 8);
}

TEST_F(StreamLimitsTest, StreamsPerConnectionAreCappedAndTheRestWait) {
  ASSERT_NO_FATAL_FAILURE(Start({"--max_streams_per_connection=1"}));
  grpc::ClientContext ctx1, ctx2;
  std::unique_ptr<Stream> s1 = stub_->InsertStream(&ctx1);
  EXPECT_EQ(SendRow(s1.get(), 1).code(), 0);
  // A second call on the same connection waits for the first to end (the
  // synchronous client blocks in opening it).
  std::unique_ptr<Stream> s2;
  std::atomic<bool> acked{false};
  std::thread second([&] {
    s2 = stub_->InsertStream(&ctx2);
    v1::InsertAck ack = SendRow(s2.get(), 2);
    EXPECT_EQ(ack.code(), 0);
    acked = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_FALSE(acked.load()) << "a second stream ran beside the first";
  s1->WritesDone();
  EXPECT_TRUE(s1->Finish().ok());
  second.join();
  EXPECT_TRUE(acked.load());
  s2->WritesDone();
  EXPECT_TRUE(s2->Finish().ok());
}

TEST_F(StreamLimitsTest, AnIdleConnectionIsClosedByTheServer) {
  ASSERT_NO_FATAL_FAILURE(Start({"--connection_idle_s=0.5"}));
  ASSERT_EQ(channel_->GetState(false), GRPC_CHANNEL_READY);
  // No call for longer than the limit: the server's GOAWAY sends the
  // channel back to IDLE.
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::seconds(20);
  while (channel_->GetState(false) == GRPC_CHANNEL_READY &&
         std::chrono::system_clock::now() < deadline) {
    channel_->WaitForStateChange(GRPC_CHANNEL_READY, deadline);
  }
  EXPECT_NE(channel_->GetState(false), GRPC_CHANNEL_READY);
  EXPECT_EQ(LiveRows(), 0);  // and the next call reconnects
}

// --max_inflight_bytes: a Search held in the batcher (a 3 s batching delay)
// keeps its request's bytes reserved, so a write that does not fit beside
// it is refused, unary or streamed, and everything fits again once the
// search is answered. peakknn_inflight_bytes shows the reservations.
TEST_F(StreamLimitsTest, RequestsBeyondTheInflightBudgetAreRefused) {
  ASSERT_NO_FATAL_FAILURE(
      Start({"--max_message_bytes=1048576", "--max_inflight_bytes=2097152",
             "--max_delay_us=3000000", "--max_batch=4096"}));
  constexpr int kBigDim = 128;
  ASSERT_NO_FATAL_FAILURE(CreateCollection("big", kBigDim));
  // 1500 rows: 768 KB on the wire, 1.5 MB reserved.
  auto upsert = [&](uint64_t first_id) {
    v1::UpsertRequest request;
    request.set_collection("big");
    for (uint64_t i = 0; i < 1500; ++i) request.add_ids(first_id + i);
    for (int i = 0; i < 1500 * kBigDim; ++i) request.add_vectors(0.5f);
    grpc::ClientContext ctx;
    v1::UpsertResponse response;
    return stub_->Upsert(&ctx, request, &response);
  };
  ASSERT_TRUE(upsert(0).ok());
  // The server releases a call's bytes when gRPC ends the call, just after
  // the client has its answer: wait for that before holding a search.
  ASSERT_TRUE(WaitForInflight([](double b) { return b == 0; }));
  auto held_search = [&] {
    // 1000 queries: 512 KB on the wire, 1 MB reserved while queued.
    v1::SearchRequest request;
    request.set_collection("big");
    request.set_k(1);
    for (int i = 0; i < 1000 * kBigDim; ++i) request.add_queries(0.5f);
    grpc::ClientContext ctx;
    v1::SearchResponse response;
    grpc::Status status = stub_->Search(&ctx, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
  };

  std::thread search(held_search);
  // EXPECT, not ASSERT: the thread must be joined either way.
  EXPECT_TRUE(WaitForInflight([](double b) { return b > 1e6; }));
  grpc::Status refused = upsert(10'000);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(),
              HasSubstr("--max_inflight_bytes=2097152"));
  search.join();
  // The server releases a call's bytes when gRPC ends the call, just after
  // the client has its answer.
  EXPECT_TRUE(WaitForInflight([](double b) { return b == 0; }));
  grpc::Status retried = upsert(10'000);
  EXPECT_TRUE(retried.ok()) << retried.error_message();
  EXPECT_TRUE(WaitForInflight([](double b) { return b == 0; }));

  // A streamed batch that does not fit is acked with the error, unread, and
  // the stream goes on.
  std::thread search2(held_search);
  // EXPECTs until the join: the thread must be joined either way.
  EXPECT_TRUE(WaitForInflight([](double b) { return b > 1e6; }));
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = stub_->InsertStream(&ctx);
  v1::InsertRequest big;
  big.set_collection("big");
  for (uint64_t i = 0; i < 1500; ++i) big.add_ids(20'000 + i);
  for (int i = 0; i < 1500 * kBigDim; ++i) big.add_vectors(0.5f);
  EXPECT_TRUE(stream->Write(big));
  v1::InsertAck ack;
  EXPECT_TRUE(stream->Read(&ack));
  EXPECT_EQ(ack.code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_THAT(ack.error(), HasSubstr("--max_inflight_bytes"));
  search2.join();
  EXPECT_TRUE(WaitForInflight([](double b) { return b == 0; }));
  ASSERT_TRUE(stream->Write(big));
  ASSERT_TRUE(stream->Read(&ack));
  EXPECT_EQ(ack.code(), 0) << ack.error();
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_TRUE(WaitForInflight([](double b) { return b == 0; }));
}

// Issue 15 item 4: hostile clients on 8 connections open 32 InsertStreams
// and push max-size batches (4 MB each, 2 GB offered in all) without ever
// reading an ack. The server must stay up with its memory bounded by the
// in-flight budget and its per-stream pipelines (not by what the clients
// send), refuse what does not fit, and serve normally once they are gone.
TEST_F(StreamLimitsTest, HostileStreamsThatNeverReadAcksCannotExhaustMemory) {
  constexpr int64_t kMessageBytes = 4 << 20;
  constexpr int64_t kBudgetBytes = 32 << 20;
  ASSERT_NO_FATAL_FAILURE(
      Start({absl::StrCat("--max_message_bytes=", kMessageBytes),
             absl::StrCat("--max_inflight_bytes=", kBudgetBytes)}));
  constexpr int kDim = 128;
  ASSERT_NO_FATAL_FAILURE(CreateCollection("big", kDim));
  const int64_t rss_before =
      peakknn::testing::ProcessMemoryKb(server_->process.pid(), "VmRSS");
  ASSERT_GT(rss_before, 0);

  constexpr int kConnections = 8;
  constexpr int kStreamsPerConnection = 4;
  constexpr int kBatchesPerStream = 16;
  // 7800 rows x 128 floats: 4.0 MB on the wire, just under the limit.
  v1::InsertRequest batch;
  batch.set_collection("big");
  for (uint64_t id = 0; id < 7800; ++id) batch.add_ids(id);
  batch.mutable_vectors()->Resize(7800 * kDim, 0.25f);
  ASSERT_LT(static_cast<int64_t>(batch.ByteSizeLong()), kMessageBytes);

  struct Attacker {
    std::unique_ptr<grpc::ClientContext> ctx =
        std::make_unique<grpc::ClientContext>();
    std::unique_ptr<Stream> stream;
    std::thread thread;
  };
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<Attacker> attackers(kConnections * kStreamsPerConnection);
  std::atomic<int64_t> sent{0};
  for (int c = 0; c < kConnections; ++c) channels.push_back(NewChannel());
  for (size_t i = 0; i < attackers.size(); ++i) {
    Attacker& a = attackers[i];
    auto stub = v1::VectorSearch::NewStub(channels[i % kConnections]);
    a.stream = stub->InsertStream(a.ctx.get());
    a.thread = std::thread([&a, &batch, &sent] {
      // Write blocks once flow control fills; a cancel ends it (false).
      for (int b = 0; b < kBatchesPerStream && a.stream->Write(batch); ++b) {
        ++sent;
      }
    });
  }
  // Let the attack run until the writers stall (the server stopped reading)
  // or have sent everything, sampling the server's memory meanwhile.
  int64_t rss_peak = rss_before;
  int64_t last_sent = -1;
  for (int i = 0; i < 300 && sent != last_sent; ++i) {
    last_sent = sent;
    for (int j = 0; j < 10; ++j) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      rss_peak = std::max(rss_peak, peakknn::testing::ProcessMemoryKb(
                                        server_->process.pid(), "VmRSS"));
    }
  }
  // A well-behaved client is answered meanwhile: a small search is served
  // or, if the budget is full, refused with RESOURCE_EXHAUSTED; never an
  // outage.
  {
    v1::SearchRequest request;
    request.set_collection("big");
    request.set_k(1);
    request.mutable_queries()->Resize(kDim, 0.5f);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    v1::SearchResponse response;
    const grpc::Status status = stub_->Search(&ctx, request, &response);
    EXPECT_TRUE(status.ok() ||
                status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED)
        << status.error_code() << ": " << status.error_message();
  }
  for (Attacker& a : attackers) a.ctx->TryCancel();
  for (Attacker& a : attackers) {
    a.thread.join();
    a.stream->Finish().IgnoreError();
  }
  const int64_t rss_hwm =
      peakknn::testing::ProcessMemoryKb(server_->process.pid(), "VmHWM");
  rss_peak = std::max(rss_peak, rss_hwm);
  std::printf(
      "hostile streams: %lld of %d batches (4 MB) sent before the writers "
      "stalled; server RSS %lld MiB before, peak %lld MiB (budget %lld MiB, "
      "%lld MiB offered)\n",
      static_cast<long long>(sent.load()),
      kConnections * kStreamsPerConnection * kBatchesPerStream,
      static_cast<long long>(rss_before >> 10),
      static_cast<long long>(rss_peak >> 10),
      static_cast<long long>(kBudgetBytes >> 20),
      static_cast<long long>(int64_t{kConnections} * kStreamsPerConnection *
                                 kBatchesPerStream * kMessageBytes >>
                             20));
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // ASan's quarantine and shadow memory make RSS meaningless there. The
  // bound: the budget, gRPC's transport buffers (held to the same size by
  // its resource quota) and allocator slack; measured about 3x the budget
  // (about 14x without the quota).
  EXPECT_LT(rss_peak - rss_before, 6 * (kBudgetBytes >> 10))
      << "the server's memory grew with what the clients sent";
#endif
  EXPECT_TRUE(WaitForInflight([](double b) { return b == 0; }));
  // Normal service once they are gone.
  v1::UpsertRequest request;
  request.set_collection("big");
  request.add_ids(1'000'000);
  request.mutable_vectors()->Resize(kDim, 1.0f);
  grpc::ClientContext ctx;
  v1::UpsertResponse response;
  const grpc::Status upserted = stub_->Upsert(&ctx, request, &response);
  EXPECT_TRUE(upserted.ok()) << upserted.error_message();
}

TEST(StreamLimitsStartupTest, BadLimitsExitTwoNamingTheFlag) {
  for (const std::string& flag : {std::string("--max_insert_streams=0"),
                                  std::string("--insert_stream_idle_s=-1"),
                                  std::string("--max_streams_per_connection=0"),
                                  std::string("--connection_idle_s=1e12"),
                                  std::string("--max_inflight_bytes=65536")}) {
    auto bad = ServerProcess::Start({flag});
    ASSERT_FALSE(bad.ok()) << flag;
    EXPECT_THAT(std::string(bad.status().message()),
                HasSubstr("exited with 2"));
    EXPECT_THAT(std::string(bad.status().message()),
                HasSubstr(flag.substr(0, flag.find('='))));
  }
}

}  // namespace
}  // namespace peakknn
