// Publishing one message to a JetStream stream, exactly once.
//
// The stream's acknowledgement is the durability point: once Publish
// returns OK, a majority of the stream's replicas have the message in their
// files, and it keeps the sequence returned for as long as the stream
// retains it (stream.h).
//
// Exactly once: every message carries a caller-chosen id (the "Nats-Msg-Id"
// header). A message whose id the stream saw within its duplicate window is
// not stored again; its ack says `duplicate` and gives the first copy's
// sequence. Publish itself retries (same id) on connection loss, a missing
// stream leader (an election after a server died) or an ack that did not
// come, until `timeout`; a caller that gives up and retries later with the
// same id, within the window, is just as safe.
//
// Cost: one request/reply per attempt (the ack comes from the stream's
// leader after a replica majority stored the message). Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "router/nats/connection.h"

namespace peakknn::nats {

struct PublishAck {
  uint64_t sequence = 0;   // the message's stream sequence
  bool duplicate = false;  // stored earlier under the same id; not again
};

struct PublishOptions {
  // When set, the message must land in this stream (FAILED_PRECONDITION
  // otherwise): guards against a subject claimed by another stream.
  std::string expected_stream;
  absl::Duration timeout = absl::Seconds(10);  // every attempt included
  // When non-zero, the message is stored only if the stream's last sequence
  // is this (optimistic concurrency over the whole stream): ABORTED
  // otherwise. JetStream checks it in order with every other write, also
  // on replicated streams (unlike the per-subject variant on servers before
  // 2.9.21, which lets concurrent writers through). A retry that finds its
  // own earlier attempt stored is answered by the dedup id, not refused.
  uint64_t expected_last_sequence = 0;
};

// `msg_id` must not be empty. Errors: INVALID_ARGUMENT (bad subject, empty
// id, payload over the stream's or server's maximum); UNAVAILABLE or
// DEADLINE_EXCEEDED when no attempt was acknowledged within the timeout
// (the message may or may not be stored: retry with the same id);
// FAILED_PRECONDITION (another stream); ABORTED (expected_last_sequence).
absl::StatusOr<PublishAck> Publish(NatsConnection& conn,
                                   std::string_view subject,
                                   std::string_view msg_id,
                                   std::string_view payload,
                                   const PublishOptions& options = {});

}  // namespace peakknn::nats
