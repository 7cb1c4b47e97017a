// Transport security and role tokens (issue 15): the real peakknn-server on
// loopback with --tls_* and --auth_tokens_file, driven by the real C++
// client (and the CLI, and raw gRPC for the health service).
//
// Certificates are made at test time with the openssl command: a CA, a
// server certificate for 127.0.0.1 and localhost, a client certificate
// from the CA, and one from another CA. No key is checked in.
#include <signal.h>

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
#include "google/protobuf/descriptor.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"

namespace peakknn {
namespace {

using client::Client;
using client::ClientOptions;
using peakknn::testing::MakeTempDir;
using peakknn::testing::RunCommand;
using peakknn::testing::ServerProcess;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kReadToken[] = "read-token-5b1d9c0e7f3a";
constexpr char kWriteToken[] = "write-token-8e2f6a4c1b9d";
constexpr char kAdminToken[] = "admin-token-3c7a0f5e9d2b";
constexpr char kUnknownToken[] = "unknown-token-a1b2c3d4e5f6";

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

// Writes beside `path` and renames over it: a reader sees the old file or
// the new one, never half of one.
void ReplaceFile(const std::string& path, const std::string& text) {
  WriteFile(path + ".new", text);
  ASSERT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0) << path;
}

std::string TokensFile() {
  return absl::StrCat("# role token\n\nread ", kReadToken, "\nwrite\t",
                      kWriteToken, "\n  admin ", kAdminToken, "  \n");
}

// Runs openssl in `dir`; fails the test with its output otherwise.
void Openssl(const std::string& dir, const std::string& args) {
  std::string output;
  ASSERT_EQ(RunCommand(absl::StrCat("cd ", dir, " && openssl ", args), &output),
            0)
      << "openssl " << args << ":\n"
      << output;
}

void NewCa(const std::string& dir, const std::string& name) {
  ASSERT_NO_FATAL_FAILURE(
      Openssl(dir, absl::StrCat("req -x509 -new -nodes -newkey ec -pkeyopt "
                                "ec_paramgen_curve:prime256v1 -keyout ",
                                name, ".key -out ", name,
                                ".pem -days 2 -subj '/CN=", name, "'")));
}

// name.key and name.pem, signed by `ca`, with the extensions `ext`.
void Issue(const std::string& dir, const std::string& ca,
           const std::string& name, const std::string& ext) {
  WriteFile(absl::StrCat(dir, "/", name, ".ext"), ext + "\n");
  ASSERT_NO_FATAL_FAILURE(Openssl(
      dir,
      absl::StrCat("req -new -nodes -newkey ec -pkeyopt "
                   "ec_paramgen_curve:prime256v1 -keyout ",
                   name, ".key -out ", name, ".csr -subj '/CN=", name, "'")));
  ASSERT_NO_FATAL_FAILURE(Openssl(
      dir, absl::StrCat("x509 -req -in ", name, ".csr -CA ", ca, ".pem -CAkey ",
                        ca, ".key -CAcreateserial -days 2 -out ", name,
                        ".pem -extfile ", name, ".ext")));
}

constexpr char kServerExt[] =
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth";
constexpr char kClientExt[] = "extendedKeyUsage=clientAuth";

enum class Transport { kPlaintext, kTls, kMutualTls };

class AuthTest : public ::testing::Test {
 protected:
  // One PKI per test process (ctest runs each test in its own).
  static void SetUpTestSuite() {
    pki_ = MakeTempDir("peakknn-auth");
    for (const char* ca : {"ca", "other-ca"}) NewCa(pki_, ca);
    Issue(pki_, "ca", "server", kServerExt);
    Issue(pki_, "ca", "client", kClientExt);
    Issue(pki_, "other-ca", "other-client", kClientExt);
    WriteFile(Path("tokens"), TokensFile());
  }
  static void TearDownTestSuite() {
    std::string ignored;
    RunCommand(absl::StrCat("rm -rf ", pki_), &ignored);
  }

  static std::string Path(const std::string& name) {
    return absl::StrCat(pki_, "/", name);
  }

  // Server flags for `transport`, with role tokens when `tokens`.
  static std::vector<std::string> Flags(Transport transport, bool tokens) {
    std::vector<std::string> flags = {"--drain_seconds=1"};
    if (transport != Transport::kPlaintext) {
      flags.push_back("--tls_cert_file=" + Path("server.pem"));
      flags.push_back("--tls_key_file=" + Path("server.key"));
    }
    if (transport == Transport::kMutualTls) {
      flags.push_back("--tls_client_ca_file=" + Path("ca.pem"));
    }
    if (tokens) flags.push_back("--auth_tokens_file=" + Path("tokens"));
    return flags;
  }

  void Start(std::vector<std::string> flags) {
    absl::StatusOr<ServerProcess> server = ServerProcess::Start(flags);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::make_unique<ServerProcess>(std::move(*server));
  }

  // Client options that fit `transport`, with `token` ("" sends none).
  ClientOptions Options(Transport transport, const std::string& token) const {
    ClientOptions options;
    options.target = server_->target();
    options.connect_timeout = absl::Seconds(5);
    options.call_timeout = absl::Seconds(10);
    options.token = token;
    if (transport != Transport::kPlaintext) {
      options.tls_ca_file = Path("ca.pem");
    }
    if (transport == Transport::kMutualTls) {
      options.tls_cert_file = Path("client.pem");
      options.tls_key_file = Path("client.key");
    }
    return options;
  }

  std::unique_ptr<Client> Connect(const ClientOptions& options) {
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(options);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  // Connect, then ListCollections: the first error, or OK.
  static absl::Status ConnectAndList(ClientOptions options) {
    options.connect_timeout = absl::Seconds(2);
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(options);
    if (!c.ok()) return c.status();
    return (*c)->ListCollections().status();
  }

  void TearDown() override {
    if (server_ != nullptr && server_->process.pid() > 0) {
      absl::StatusOr<int> rc = server_->process.Stop(SIGTERM);
      ASSERT_TRUE(rc.ok()) << rc.status();
      EXPECT_EQ(*rc, 0) << server_->Log();
    }
  }

  static std::string pki_;
  std::unique_ptr<ServerProcess> server_;
};

std::string AuthTest::pki_;

// ---- Every RPC x every role x every transport

enum class Caller { kNone, kUnknown, kRead, kWrite, kAdmin };

struct CallerCase {
  Caller caller;
  const char* name;
  const char* token;
};
constexpr CallerCase kCallers[] = {
    {Caller::kNone, "no token", ""},
    {Caller::kUnknown, "unknown token", kUnknownToken},
    {Caller::kRead, "read", kReadToken},
    {Caller::kWrite, "write", kWriteToken},
    {Caller::kAdmin, "admin", kAdminToken},
};

// One call of each method, with a request the handler answers with
// `admitted` once the caller is let in: a missing collection (NOT_FOUND),
// an invalid schema (nothing is created), or a plain success.
struct RpcCase {
  const char* method;
  Caller needs;
  absl::StatusCode admitted;
  std::function<absl::Status(Client&)> call;
};

std::vector<RpcCase> Rpcs() {
  static const std::vector<float> kVector = {1, 2, 3, 4};
  static const std::vector<uint64_t> kIds = {7};
  using C = absl::StatusCode;
  return {
      {"CreateCollection", Caller::kAdmin, C::kInvalidArgument,
       [](Client& c) {
         v1::CollectionSchema schema;
         schema.set_name("probe");  // dim 0: refused, nothing created
         return c.CreateCollection(schema).status();
       }},
      {"DropCollection", Caller::kAdmin, C::kNotFound,
       [](Client& c) { return c.DropCollection("absent"); }},
      {"ListCollections", Caller::kRead, C::kOk,
       [](Client& c) { return c.ListCollections().status(); }},
      {"DescribeCollection", Caller::kRead, C::kNotFound,
       [](Client& c) { return c.DescribeCollection("absent").status(); }},
      {"Search", Caller::kRead, C::kNotFound,
       [](Client& c) { return c.Search("absent", kVector, 1).status(); }},
      {"InsertStream", Caller::kWrite, C::kNotFound,
       [](Client& c) { return c.InsertAll("absent", kIds, kVector).status(); }},
      {"Upsert", Caller::kWrite, C::kNotFound,
       [](Client& c) { return c.Upsert("absent", kIds, kVector).status(); }},
      {"Delete", Caller::kWrite, C::kNotFound,
       [](Client& c) { return c.Delete("absent", kIds).status(); }},
      {"Get", Caller::kRead, C::kNotFound,
       [](Client& c) { return c.Get("absent", kIds).status(); }},
      {"PlanRecall", Caller::kRead, C::kOk,
       [](Client& c) {
         v1::PlanRecallRequest req;
         req.set_n(100000);
         req.set_k(10);
         req.set_recall_target(0.9);
         return c.PlanRecall(req).status();
       }},
      {"GetStats", Caller::kRead, C::kOk,
       [](Client& c) { return c.GetStats().status(); }},
  };
}

const char* RoleName(Caller caller) {
  return caller == Caller::kRead    ? "read"
         : caller == Caller::kWrite ? "write"
                                    : "admin";
}

struct MatrixParam {
  Transport transport;
  bool tokens;
  const char* name;
};

// Names the case in ctest's list (gtest prints the bytes otherwise).
void PrintTo(const MatrixParam& param, std::ostream* os) { *os << param.name; }

class AuthMatrixTest : public AuthTest,
                       public ::testing::WithParamInterface<MatrixParam> {};

TEST_P(AuthMatrixTest, EveryRpcAnswersEveryCaller) {
  const MatrixParam& p = GetParam();
  const std::vector<RpcCase> rpcs = Rpcs();
  // A method added to the service needs a row here (and in the server's
  // table, server/authorizer.cc).
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          v1::VectorSearch::service_full_name());
  ASSERT_NE(service, nullptr);
  ASSERT_EQ(rpcs.size(), static_cast<size_t>(service->method_count()));

  ASSERT_NO_FATAL_FAILURE(Start(Flags(p.transport, p.tokens)));
  for (const CallerCase& caller : kCallers) {
    std::unique_ptr<Client> client =
        Connect(Options(p.transport, caller.token));
    ASSERT_NE(client, nullptr) << caller.name;
    for (const RpcCase& rpc : rpcs) {
      SCOPED_TRACE(absl::StrCat(p.name, ", ", caller.name, ", ", rpc.method));
      const absl::Status status = rpc.call(*client);
      const std::string message(status.message());
      EXPECT_THAT(message, Not(HasSubstr("-token-")));  // never echoed
      if (!p.tokens) {
        EXPECT_EQ(status.code(), rpc.admitted) << status;
      } else if (caller.caller == Caller::kNone ||
                 caller.caller == Caller::kUnknown) {
        EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
        EXPECT_THAT(message,
                    HasSubstr("missing or unknown token; send authorization: "
                              "Bearer <token>"));
      } else if (caller.caller < rpc.needs) {
        EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
        EXPECT_THAT(message, HasSubstr(absl::StrCat(rpc.method, " needs role ",
                                                    RoleName(rpc.needs),
                                                    " or higher; this token "
                                                    "has role ",
                                                    RoleName(caller.caller))));
      } else {
        EXPECT_EQ(status.code(), rpc.admitted) << status;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Transports, AuthMatrixTest,
    ::testing::Values(MatrixParam{Transport::kPlaintext, false, "Open"},
                      MatrixParam{Transport::kPlaintext, true, "Plaintext"},
                      MatrixParam{Transport::kTls, true, "Tls"},
                      MatrixParam{Transport::kMutualTls, true, "MutualTls"}),
    [](const ::testing::TestParamInfo<MatrixParam>& param) {
      return std::string(param.param.name);
    });

// ---- What each role can do, end to end

TEST_F(AuthTest, EachRoleDoesItsWork) {
  ASSERT_NO_FATAL_FAILURE(Start(Flags(Transport::kTls, true)));
  std::unique_ptr<Client> admin =
      Connect(Options(Transport::kTls, kAdminToken));
  std::unique_ptr<Client> writer =
      Connect(Options(Transport::kTls, kWriteToken));
  std::unique_ptr<Client> reader =
      Connect(Options(Transport::kTls, kReadToken));
  ASSERT_TRUE(admin && writer && reader);
  v1::CollectionSchema schema;
  schema.set_name("docs");
  schema.set_dim(4);
  schema.set_metric(v1::METRIC_L2);
  const absl::Status created = admin->CreateCollection(schema).status();
  ASSERT_TRUE(created.ok()) << created;
  const std::vector<float> rows = peakknn::testing::RandomVectors(100, 4, 3);
  std::vector<uint64_t> ids(100);
  for (uint64_t i = 0; i < ids.size(); ++i) ids[i] = i;
  absl::StatusOr<client::InsertSummary> inserted =
      writer->InsertAll("docs", ids, rows);
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_EQ(inserted->rows, 100);
  ASSERT_TRUE(writer->Delete("docs", std::vector<uint64_t>{0}).ok());
  absl::StatusOr<v1::SearchResponse> found =
      reader->Search("docs", std::span(rows).subspan(4, 4), 1, 1.0);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->results(0).ids_size(), 1);
  EXPECT_EQ(found->results(0).ids(0), 1u);
  EXPECT_EQ(reader->DropCollection("docs").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(admin->DropCollection("docs").ok());
}

// ---- Transport refusals

TEST_F(AuthTest, TlsServerRefusesPlaintextAndUntrustedClients) {
  ASSERT_NO_FATAL_FAILURE(Start(Flags(Transport::kTls, false)));
  ClientOptions plaintext = Options(Transport::kPlaintext, "");
  EXPECT_EQ(ConnectAndList(plaintext).code(), absl::StatusCode::kUnavailable);
  ClientOptions system_roots = Options(Transport::kPlaintext, "");
  system_roots.tls = true;  // the test CA is not among them
  EXPECT_EQ(ConnectAndList(system_roots).code(),
            absl::StatusCode::kUnavailable);
  // The certificate names 127.0.0.1 and localhost, nothing else.
  ClientOptions wrong_name = Options(Transport::kTls, "");
  wrong_name.tls_server_name = "elsewhere.example";
  EXPECT_EQ(ConnectAndList(wrong_name).code(), absl::StatusCode::kUnavailable);
  ClientOptions by_name = Options(Transport::kTls, "");
  by_name.tls_server_name = "localhost";
  EXPECT_TRUE(ConnectAndList(by_name).ok());
  EXPECT_TRUE(ConnectAndList(Options(Transport::kTls, "")).ok());
}

TEST_F(AuthTest, MutualTlsRefusesClientsWithoutATrustedCertificate) {
  ASSERT_NO_FATAL_FAILURE(Start(Flags(Transport::kMutualTls, false)));
  EXPECT_EQ(ConnectAndList(Options(Transport::kTls, "")).code(),
            absl::StatusCode::kUnavailable);  // no client certificate
  ClientOptions other_ca = Options(Transport::kMutualTls, "");
  other_ca.tls_cert_file = Path("other-client.pem");
  other_ca.tls_key_file = Path("other-client.key");
  EXPECT_EQ(ConnectAndList(other_ca).code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(ConnectAndList(Options(Transport::kMutualTls, "")).ok());
}

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

// ---- The CLI's flags

TEST_F(AuthTest, CliSendsTheTokenOverTls) {
  ASSERT_NO_FATAL_FAILURE(Start(Flags(Transport::kMutualTls, true)));
  const std::string tls = absl::StrCat(" --tls_ca=", Path("ca.pem"),
                                       " --tls_cert=", Path("client.pem"),
                                       " --tls_key=", Path("client.key"));
  const std::string cli = absl::StrCat(
      PEAKKNN_CLI_BIN, " --server=", server_->target(), " --timeout=10");
  std::string out;
  EXPECT_EQ(
      RunCommand(absl::StrCat(cli, tls, " --token=", kReadToken, " stats"),
                 &out),
      0)
      << out;
  EXPECT_EQ(RunCommand(absl::StrCat("PEAKKNN_TOKEN=", kAdminToken, " ", cli,
                                    tls, " create c1 --dim 4"),
                       &out),
            0)
      << out;
  EXPECT_EQ(RunCommand(absl::StrCat("PEAKKNN_TOKEN=", kReadToken, " ", cli, tls,
                                    " drop c1"),
                       &out),
            1);
  EXPECT_THAT(out, HasSubstr("PERMISSION_DENIED"));
  EXPECT_EQ(RunCommand(absl::StrCat(cli, tls, " list"), &out), 1);
  EXPECT_THAT(out, HasSubstr("UNAUTHENTICATED"));
  EXPECT_EQ(
      RunCommand(absl::StrCat(cli, " --tls_cert=", Path("client.pem"), " list"),
                 &out),
      2);
  EXPECT_THAT(out, HasSubstr("--tls_cert and --tls_key"));
}

}  // namespace
}  // namespace peakknn
