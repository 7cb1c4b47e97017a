// The real peakknn-server binary from start to stop
// (tests/server_test_fixture.h): configuration by flags and environment,
// health and reflection, draining on SIGTERM, bad flags, and a client facing
// no server.
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"
#include "tests/server_test_fixture.h"
namespace peakknn {
namespace {

using client::Client;
using client::ClientOptions;
using peakknn::testing::ServerProcess;
using peakknn::testing::ServerTest;
using ::testing::HasSubstr;

constexpr int kDim = testing::kServerTestDim;

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
