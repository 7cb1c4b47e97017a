// The command-line flags that make a client speak TLS and send a token,
// shared by the `peakknn` CLI and peakknn-loadgen so that both take the
// same ones: --tls, --tls_ca, --tls_cert, --tls_key, --tls_server_name and
// --token (default: the environment variable PEAKKNN_TOKEN, so the token
// need not appear in the process list).
#pragma once

#include "absl/status/status.h"
#include "client/client.h"

namespace peakknn::client {

// Sets `options`' token and TLS fields from the flags (after
// absl::ParseCommandLine). INVALID_ARGUMENT naming the flags for a client
// certificate without its key or the reverse.
absl::Status ApplySecurityFlags(ClientOptions* options);

}  // namespace peakknn::client
