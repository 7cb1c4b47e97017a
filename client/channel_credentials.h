// The channel credentials a ClientOptions asks for: plaintext, TLS, or TLS
// with a client certificate (mutual TLS), with the files read and the
// token checked up front so that a mistake is named before connecting.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "client/client.h"
#include "grpcpp/security/credentials.h"

namespace peakknn::client {

// Whether `options` asks for TLS (tls set, or any tls_* file given).
bool UsesTls(const ClientOptions& options);

// Insecure credentials without TLS, SSL credentials with it.
// INVALID_ARGUMENT naming the option for an unreadable file, a certificate
// without its key (or the reverse), or a token the header cannot carry.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const ClientOptions& options);

}  // namespace peakknn::client
