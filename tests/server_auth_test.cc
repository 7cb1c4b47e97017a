// Transport security and role tokens (issue 15), against the real
// peakknn-server (tests/auth_test_fixture.h): every RPC x every caller x
// every transport, what each role can do, transport refusals, and the CLI's
// security flags.
#include <cstdio>
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
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/auth_test_fixture.h"
#include "tests/server_process.h"

namespace peakknn {
namespace {

using client::Client;
using client::ClientOptions;
using peakknn::testing::AuthTest;
using peakknn::testing::kAdminToken;
using peakknn::testing::kReadToken;
using peakknn::testing::kUnknownToken;
using peakknn::testing::kWriteToken;
using peakknn::testing::RunCommand;
using peakknn::testing::Transport;
using ::testing::HasSubstr;
using ::testing::Not;

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
