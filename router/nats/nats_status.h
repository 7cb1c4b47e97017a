// Turns a failed call of the NATS C client into an absl::Status.
//
// The message names the operation and what it was on (the caller's `what`,
// e.g. "create stream PEAKKNN_docs_0"), then the NATS status text, the
// thread's last NATS error text when it says more (the server's own words,
// e.g. "wrong last sequence: 7"), and the JetStream error code when there is
// one. Call it right after the failing call, on the same thread: the last
// error text is thread-local in the C client.
//
// Codes: NATS_TIMEOUT -> DEADLINE_EXCEEDED; NATS_NOT_FOUND and JetStream's
// stream/consumer/message-not-found -> NOT_FOUND; connection loss, no
// responders and JetStream "not available / no leader" -> UNAVAILABLE;
// invalid arguments and stream configuration errors -> INVALID_ARGUMENT;
// "already in use" -> ALREADY_EXISTS; wrong last sequence (a failed
// compare-and-set) -> ABORTED; a publish answered by another stream than
// the expected one -> FAILED_PRECONDITION; storage limits ->
// RESOURCE_EXHAUSTED; anything else -> INTERNAL.
#pragma once

#include <nats/nats.h>

#include <string_view>

#include "absl/status/status.h"

namespace peakknn::nats {

// `status` must not be NATS_OK. `js_code` is the jsErrCode the call filled
// in, or 0.
absl::Status NatsError(natsStatus status, std::string_view what,
                       jsErrCode js_code = static_cast<jsErrCode>(0));

// Whether a call that failed with `status` may succeed if tried again on the
// same or another server (connection loss, no leader yet, timeouts).
bool IsTransient(const absl::Status& status);

}  // namespace peakknn::nats
