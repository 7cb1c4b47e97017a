// The gRPC port's transport credentials: plaintext, TLS, or mutual TLS.
//
// TLS uses gRPC's FileWatcherCertificateProvider: the certificate chain,
// key and client CA bundle are re-read every --tls_reload_s when they
// changed, and new handshakes use the new ones while open connections keep
// theirs (nothing is dropped). To replace a certificate, write the new key
// and chain beside the old ones and rename them into place, key first, so
// that a check never reads half a file.
//
// At start-up the files are checked here first (gRPC would only log and
// then fail every handshake): each must hold PEM, the key must be the
// certificate's, and the CA bundle must hold a certificate. An error names
// the flag and the file.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"
#include "server/config.h"

namespace peakknn::server {

// Plaintext without --tls_cert_file; TLS with it; mutual TLS (a client
// certificate signed by --tls_client_ca_file required) with that too.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
    const ServerConfig& config);

// "plaintext", "TLS" or "mutual TLS": the log's word for what the flags
// ask.
const char* TransportName(const ServerConfig& config);

}  // namespace peakknn::server
