// JetStream stream management: create-or-update, state, delete.
//
// Every stream made here keeps its messages in files on each of its
// `replicas` servers (a Raft group; a publish is acknowledged once a majority
// has it: publish.h), under the "limits" retention policy: messages stay
// until the stream passes `max_bytes` or a message is older than `max_age`,
// and then the oldest go first. Sequences start at 1, grow by one per stored
// message and never go back, so a reader can tell a gap (messages it needs
// were dropped) from the stream's first sequence (pull_consumer.h).
//
// Each call is one JetStream API request (one round trip to the stream's
// leader via the meta leader), bounded by the connection's
// jetstream_timeout. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "router/nats/connection.h"

namespace peakknn::nats {

struct StreamConfig {
  // No '.', '*', '>', whitespace or path separators.
  std::string name;
  std::vector<std::string> subjects;  // what it stores; must not overlap
  int replicas = 1;                   // 1..5 (servers holding a copy)
  int64_t max_bytes = -1;             // -1: no size limit
  absl::Duration max_age = absl::ZeroDuration();  // zero: no age limit
  // A publish whose message id was seen within this window is not stored
  // again: its ack names the first copy's sequence (publish.h). At most
  // max_age when that is set (the server refuses a longer window).
  absl::Duration duplicate_window = absl::Minutes(2);
  int32_t max_message_bytes = -1;  // -1: the server's max_payload
};

struct StreamState {
  // Sequences held: [first_sequence, last_sequence]. An empty stream has
  // first_sequence == last_sequence + 1 (last_sequence == 0 when nothing was
  // ever stored).
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;
  uint64_t messages = 0;
  uint64_t bytes = 0;
};

struct StreamInfo {
  StreamConfig config;  // as the server holds it
  StreamState state;
  std::string leader;  // server name of its Raft leader; "" while none
};

// Creates the stream, or updates an existing one of that name to `config`
// (subjects, retention, replicas and the duplicate window may change).
absl::StatusOr<StreamInfo> CreateOrUpdateStream(NatsConnection& conn,
                                                const StreamConfig& config);

// NOT_FOUND when there is no such stream.
absl::StatusOr<StreamInfo> GetStreamInfo(NatsConnection& conn,
                                         std::string_view name);

// Deletes the stream and its messages and consumers; NOT_FOUND when there is
// no such stream.
absl::Status DeleteStream(NatsConnection& conn, std::string_view name);

}  // namespace peakknn::nats
