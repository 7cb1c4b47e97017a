#include "client/channel_credentials.h"

#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace peakknn::client {
namespace {

// The whole file, or INVALID_ARGUMENT naming `option`.
absl::StatusOr<std::string> ReadPem(const char* option,
                                    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.is_open() || in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat(option, "=", path, ": cannot read it"));
  }
  return text.str();
}

// Tokens travel in an HTTP/2 header value: visible ASCII only, and no
// spaces (the server splits "Bearer <token>" at the first space).
absl::Status CheckToken(const std::string& token) {
  for (const char c : token) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(
          "token: must be printable ASCII without whitespace (it is sent as "
          "'authorization: Bearer <token>')");
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool UsesTls(const ClientOptions& options) {
  return options.tls || !options.tls_ca_file.empty() ||
         !options.tls_cert_file.empty() || !options.tls_key_file.empty() ||
         !options.tls_server_name.empty();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const ClientOptions& options) {
  if (absl::Status s = CheckToken(options.token); !s.ok()) return s;
  if (!UsesTls(options)) return grpc::InsecureChannelCredentials();
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_cert_file and tls_key_file: a client certificate needs its key "
        "(set both or neither; only ",
        options.tls_cert_file.empty() ? "tls_key_file" : "tls_cert_file",
        " is set)"));
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_ca_file.empty()) {
    absl::StatusOr<std::string> roots =
        ReadPem("tls_ca_file", options.tls_ca_file);
    if (!roots.ok()) return roots.status();
    ssl.pem_root_certs = *std::move(roots);
  }
  if (!options.tls_cert_file.empty()) {
    absl::StatusOr<std::string> cert =
        ReadPem("tls_cert_file", options.tls_cert_file);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key =
        ReadPem("tls_key_file", options.tls_key_file);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace peakknn::client
