// Test support for the transport-security and role-token tests
// (server_auth_test.cc, server_auth_lifecycle_test.cc): the real
// peakknn-server on loopback with --tls_* and --auth_tokens_file, and a PKI
// made at test time with the openssl command: a CA, a server certificate for
// 127.0.0.1 and localhost, a client certificate from the CA, and one from
// another CA. No key is checked in.
#pragma once

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"

namespace peakknn::testing {

using client::Client;
using client::ClientOptions;

inline constexpr char kReadToken[] = "read-token-5b1d9c0e7f3a";
inline constexpr char kWriteToken[] = "write-token-8e2f6a4c1b9d";
inline constexpr char kAdminToken[] = "admin-token-3c7a0f5e9d2b";
inline constexpr char kUnknownToken[] = "unknown-token-a1b2c3d4e5f6";

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

// Writes beside `path` and renames over it: a reader sees the old file or
// the new one, never half of one.
inline void ReplaceFile(const std::string& path, const std::string& text) {
  WriteFile(path + ".new", text);
  ASSERT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0) << path;
}

inline std::string TokensFile() {
  return absl::StrCat("# role token\n\nread ", kReadToken, "\nwrite\t",
                      kWriteToken, "\n  admin ", kAdminToken, "  \n");
}

// Runs openssl in `dir`; fails the test with its output otherwise.
inline void Openssl(const std::string& dir, const std::string& args) {
  std::string output;
  ASSERT_EQ(RunCommand(absl::StrCat("cd ", dir, " && openssl ", args), &output),
            0)
      << "openssl " << args << ":\n"
      << output;
}

inline void NewCa(const std::string& dir, const std::string& name) {
  ASSERT_NO_FATAL_FAILURE(
      Openssl(dir, absl::StrCat("req -x509 -new -nodes -newkey ec -pkeyopt "
                                "ec_paramgen_curve:prime256v1 -keyout ",
                                name, ".key -out ", name,
                                ".pem -days 2 -subj '/CN=", name, "'")));
}

// name.key and name.pem, signed by `ca`, with the extensions `ext`.
inline void Issue(const std::string& dir, const std::string& ca,
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

inline constexpr char kServerExt[] =
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth";
inline constexpr char kClientExt[] = "extendedKeyUsage=clientAuth";

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

  static inline std::string pki_;
  std::unique_ptr<ServerProcess> server_;
};

}  // namespace peakknn::testing
