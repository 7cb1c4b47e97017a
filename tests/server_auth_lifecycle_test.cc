// Transport security and role tokens over the server's life
// (tests/auth_test_fixture.h): health open to probes (also on the plaintext
// health port), certificate and token reloads, and start-up checks of the
// security settings.
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
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
#include "tests/auth_test_fixture.h"
#include "tests/server_process.h"

namespace peakknn {
namespace {

using client::Client;
using client::ClientOptions;
using peakknn::testing::AuthTest;
using peakknn::testing::Issue;
using peakknn::testing::kAdminToken;
using peakknn::testing::kReadToken;
using peakknn::testing::kServerExt;
using peakknn::testing::MakeTempDir;
using peakknn::testing::ReplaceFile;
using peakknn::testing::RunCommand;
using peakknn::testing::ServerProcess;
using peakknn::testing::TokensFile;
using peakknn::testing::Transport;
using peakknn::testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- Health stays open

// grpc.health.v1.Health/Check through the generic stub (Debian ships no
// generated health client), without metadata.
absl::StatusOr<std::string> HealthCheck(
    const std::string& target,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::GenericStub stub(grpc::CreateChannel(target, credentials));
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  const std::string name = "peakknn.v1.VectorSearch";
  grpc::Slice slice(std::string("\x0a", 1) + char(name.size()) + name);
  grpc::ByteBuffer request(&slice, 1);
  auto call =
      stub.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  cq.Next(&tag, &ok);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  grpc::Slice out;
  if (!response.DumpToSingleSlice(&out).ok()) {
    return absl::InternalError("cannot read the health response");
  }
  return std::string(reinterpret_cast<const char*>(out.begin()), out.size());
}

TEST_F(AuthTest, HealthNeedsNoToken) {
  ASSERT_NO_FATAL_FAILURE(Start(Flags(Transport::kTls, true)));
  std::string ca;
  {
    std::ifstream in(Path("ca.pem"));
    ca.assign(std::istreambuf_iterator<char>(in), {});
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca;
  absl::StatusOr<std::string> health =
      HealthCheck(server_->target(), grpc::SslCredentials(ssl));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, std::string("\x08\x01", 2));  // SERVING
}

// Kubernetes' gRPC probes cannot speak TLS: --health_listen gives them a
// plaintext port that answers health and serves no data.
TEST_F(AuthTest, PlaintextHealthPortAnswersProbesOfAMutualTlsServer) {
  std::vector<std::string> flags = Flags(Transport::kMutualTls, true);
  flags.push_back("--health_listen=127.0.0.1:0");
  ASSERT_NO_FATAL_FAILURE(Start(flags));
  ASSERT_GT(server_->health_port, 0) << server_->Log();
  const std::string health_target =
      absl::StrCat("127.0.0.1:", server_->health_port);
  absl::StatusOr<std::string> health =
      HealthCheck(health_target, grpc::InsecureChannelCredentials());
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, std::string("\x08\x01", 2));  // SERVING
  // The main port still refuses a plaintext probe.
  EXPECT_FALSE(
      HealthCheck(server_->target(), grpc::InsecureChannelCredentials()).ok());
  // No peakknn call is served on the health port, token or not.
  ClientOptions options = Options(Transport::kPlaintext, kAdminToken);
  options.target = health_target;
  EXPECT_EQ(ConnectAndList(options).code(), absl::StatusCode::kUnimplemented);
}

// ---- Reloads

// Polls `done` every 100 ms for up to `seconds`.
bool Eventually(const std::function<bool()>& done, double seconds = 8) {
  const absl::Time deadline = absl::Now() + absl::Seconds(seconds);
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return done();
}

TEST_F(AuthTest, TokensFileReloads) {
  const std::string tokens = MakeTempDir("peakknn-tokens") + "/tokens";
  WriteFile(tokens, TokensFile());
  std::vector<std::string> flags = Flags(Transport::kPlaintext, false);
  flags.push_back("--auth_tokens_file=" + tokens);
  flags.push_back("--tls_reload_s=1");
  ASSERT_NO_FATAL_FAILURE(Start(flags));
  constexpr char kNewToken[] = "new-admin-token-f00dfeed42";
  std::unique_ptr<Client> old_admin =
      Connect(Options(Transport::kPlaintext, kAdminToken));
  std::unique_ptr<Client> new_admin =
      Connect(Options(Transport::kPlaintext, kNewToken));
  ASSERT_TRUE(old_admin && new_admin);
  ASSERT_TRUE(old_admin->GetStats().ok());
  ASSERT_EQ(new_admin->GetStats().status().code(),
            absl::StatusCode::kUnauthenticated);

  // The admin token replaced; the same connections see the change.
  ASSERT_NO_FATAL_FAILURE(ReplaceFile(
      tokens, absl::StrCat("read ", kReadToken, "\nadmin ", kNewToken, "\n")));
  EXPECT_TRUE(Eventually([&] { return new_admin->GetStats().ok(); }));
  EXPECT_EQ(old_admin->GetStats().status().code(),
            absl::StatusCode::kUnauthenticated);

  // A file that does not parse keeps the tokens in force, and says why.
  ASSERT_NO_FATAL_FAILURE(ReplaceFile(
      tokens,
      absl::StrCat("admin ", kNewToken, "\nsuperuser ", kAdminToken, "\n")));
  EXPECT_TRUE(Eventually([&] {
    return server_->Log().find(":2: the first field is not a role") !=
           std::string::npos;
  })) << server_->Log();
  EXPECT_TRUE(new_admin->GetStats().ok());
  EXPECT_EQ(old_admin->GetStats().status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(server_->Log(), HasSubstr("keeping the tokens loaded before"));
  for (const char* token : {kReadToken, kAdminToken, kNewToken}) {
    EXPECT_THAT(server_->Log(), Not(HasSubstr(token)));
  }
  std::string ignored;
  RunCommand("rm -rf " + tokens.substr(0, tokens.rfind('/')), &ignored);
}

// The serial number of the certificate the server presents now.
std::string ServedSerial(int port, const std::string& pki) {
  std::string out;
  RunCommand(absl::StrCat("openssl s_client -connect 127.0.0.1:", port,
                          " -alpn h2 -CAfile ", pki, "/ca.pem -cert ", pki,
                          "/client.pem -key ", pki, "/client.key",
                          " </dev/null 2>/dev/null | openssl x509 -noout "
                          "-serial"),
             &out);
  return out;
}

std::string FileSerial(const std::string& pem) {
  std::string out;
  RunCommand(absl::StrCat("openssl x509 -noout -serial -in ", pem), &out);
  return out;
}

TEST_F(AuthTest, CertificateReloadKeepsConnections) {
  // The server's own copies of its key and certificate, to replace.
  const std::string dir = MakeTempDir("peakknn-certs");
  std::string ignored;
  ASSERT_EQ(RunCommand(absl::StrCat("cp ", Path("server.pem"), " ",
                                    Path("server.key"), " ", dir),
                       &ignored),
            0);
  ASSERT_NO_FATAL_FAILURE(Start({"--drain_seconds=1", "--tls_reload_s=1",
                                 "--tls_cert_file=" + dir + "/server.pem",
                                 "--tls_key_file=" + dir + "/server.key",
                                 "--tls_client_ca_file=" + Path("ca.pem")}));
  const std::string first = ServedSerial(server_->port, pki_);
  ASSERT_THAT(first, HasSubstr("serial=")) << server_->Log();
  EXPECT_EQ(first, FileSerial(Path("server.pem")));
  std::unique_ptr<Client> before = Connect(Options(Transport::kMutualTls, ""));
  ASSERT_NE(before, nullptr);
  ASSERT_TRUE(before->ListCollections().ok());

  // A new key and certificate from the same CA, renamed into place.
  ASSERT_NO_FATAL_FAILURE(Issue(pki_, "ca", "server2", kServerExt));
  const std::string second = FileSerial(Path("server2.pem"));
  ASSERT_NE(first, second);
  ASSERT_EQ(RunCommand(absl::StrCat("cp ", Path("server2.key"), " ", dir,
                                    "/new.key && cp ", Path("server2.pem"), " ",
                                    dir, "/new.pem && mv ", dir, "/new.key ",
                                    dir, "/server.key && mv ", dir, "/new.pem ",
                                    dir, "/server.pem"),
                       &ignored),
            0);
  EXPECT_TRUE(Eventually([&] {
    return ServedSerial(server_->port, pki_) == second;
  })) << server_->Log();
  EXPECT_TRUE(before->ListCollections().ok());  // the old connection lives
  EXPECT_TRUE(ConnectAndList(Options(Transport::kMutualTls, "")).ok());
  RunCommand("rm -rf " + dir, &ignored);
}

// ---- Start-up

TEST_F(AuthTest, PlaintextOnTheNetworkWarns) {
  ASSERT_NO_FATAL_FAILURE(Start({"--listen=0.0.0.0:0"}));
  EXPECT_THAT(server_->Log(),
              HasSubstr("WARNING: --listen=0.0.0.0:0 is reachable from the "
                        "network and TLS is off"));
  // Loopback, and TLS anywhere, do not warn.
  ASSERT_NO_FATAL_FAILURE(TearDown());
  server_.reset();
  ASSERT_NO_FATAL_FAILURE(Start({}));
  std::vector<std::string> tls = Flags(Transport::kTls, false);
  tls.push_back("--listen=0.0.0.0:0");
  absl::StatusOr<ServerProcess> with_tls = ServerProcess::Start(tls);
  ASSERT_TRUE(with_tls.ok()) << with_tls.status();
  EXPECT_THAT(server_->Log(), Not(HasSubstr("WARNING")));
  EXPECT_THAT(with_tls->Log(), Not(HasSubstr("WARNING")));
  EXPECT_THAT(with_tls->Log(), HasSubstr("TLS, no authentication"));
}

// Runs the server with `settings` (flags, or a NAME=value to put in its
// environment); it must exit before serving. Returns its exit code and log.
int RunServer(const std::string& settings, std::string* log) {
  const std::string dir = MakeTempDir("peakknn-flags");
  const bool env = settings.starts_with("PEAKKNN_");
  const int rc = RunCommand(
      absl::StrCat(env ? settings : "", " timeout 30 ", PEAKKNN_SERVER_BIN,
                   " --listen=127.0.0.1:0 --metrics_listen= --data_dir=", dir,
                   "/data ", env ? "" : settings),
      log);
  std::string ignored;
  RunCommand("rm -rf " + dir, &ignored);
  return rc;
}

TEST_F(AuthTest, BadSettingsExit2NamingThem) {
  WriteFile(Path("bad-tokens"), absl::StrCat("read ", kReadToken, "\n# fine\n",
                                             kAdminToken, " admin\n"));
  WriteFile(Path("short-tokens"), "admin short\n");
  WriteFile(Path("empty-tokens"), "# nobody\n");
  const std::string cert = Path("server.pem");
  const std::string key = Path("server.key");
  const struct {
    std::string flags;
    std::string names;
  } cases[] = {
      {"--tls_cert_file=" + cert,
       "--tls_cert_file and --tls_key_file: set both or neither (only "
       "--tls_cert_file"},
      {"--tls_key_file=" + key, "(only --tls_key_file is set)"},
      {"--tls_client_ca_file=" + Path("ca.pem"),
       "--tls_client_ca_file: mutual TLS needs TLS"},
      {"--tls_cert_file=/nonexistent.pem --tls_key_file=" + key,
       "--tls_cert_file=/nonexistent.pem: cannot read it"},
      {"--tls_cert_file=" + cert + " --tls_key_file=" + Path("client.key"),
       "--tls_key_file=" + Path("client.key") + ": is not the key of"},
      {"--tls_cert_file=" + key + " --tls_key_file=" + key,
       "holds no PEM certificate"},
      {"--tls_cert_file=" + cert + " --tls_key_file=" + key +
           " --tls_client_ca_file=" + Path("tokens"),
       "--tls_client_ca_file=" + Path("tokens") + ": holds no PEM certificate"},
      {"--tls_reload_s=0", "--tls_reload_s=0: must be in [1, 86400]"},
      {"--auth_tokens_file=" + Path("bad-tokens"),
       Path("bad-tokens") + ":3: the first field is not a role"},
      {"--auth_tokens_file=" + Path("short-tokens"),
       Path("short-tokens") + ":1: the token has 5 characters"},
      {"--auth_tokens_file=" + Path("empty-tokens"), "no tokens"},
      {"--auth_tokens_file=/nonexistent-tokens",
       "--auth_tokens_file=/nonexistent-tokens: cannot stat it"},
      // Each flag is also a PEAKKNN_* variable.
      {"PEAKKNN_TLS_KEY_FILE=" + key, "(only --tls_key_file is set)"},
      {"PEAKKNN_AUTH_TOKENS_FILE=" + Path("empty-tokens"), "no tokens"},
  };
  for (const auto& c : cases) {
    std::string log;
    EXPECT_EQ(RunServer(c.flags, &log), 2) << c.flags << "\n" << log;
    EXPECT_THAT(log, HasSubstr(c.names)) << c.flags;
    EXPECT_THAT(log, Not(HasSubstr(kAdminToken)));
    EXPECT_THAT(log, Not(HasSubstr("short\n")));
  }
}

}  // namespace
}  // namespace peakknn
