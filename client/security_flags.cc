#include "client/security_flags.h"

#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(bool, tls, false,
          "Speak TLS, trusting the system's root certificates (implied by "
          "--tls_ca, --tls_cert, --tls_server_name)");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM root certificates that sign the server's certificate (turns "
          "on TLS)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate for mutual TLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name to expect in the server's certificate when it is not the "
          "--server host");
ABSL_FLAG(std::string, token, "",
          "Role token, sent as 'authorization: Bearer <token>' (default: "
          "$PEAKKNN_TOKEN)");

namespace peakknn::client {

absl::Status ApplySecurityFlags(ClientOptions* options) {
  options->token = absl::GetFlag(FLAGS_token);
  if (options->token.empty()) {
    const char* env = std::getenv("PEAKKNN_TOKEN");
    if (env != nullptr) options->token = env;
  }
  options->tls = absl::GetFlag(FLAGS_tls);
  options->tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  options->tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options->tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options->tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  if (options->tls_cert_file.empty() != options->tls_key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_cert and --tls_key: a client certificate needs its key (set "
        "both or neither; only --",
        options->tls_cert_file.empty() ? "tls_key" : "tls_cert", " is set)"));
  }
  return absl::OkStatus();
}

}  // namespace peakknn::client
