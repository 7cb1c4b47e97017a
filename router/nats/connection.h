// A client connection to a NATS cluster, with its JetStream context.
//
// The connection holds a list of server URLs; when the server it talks to
// goes away, the C client reconnects to another one on its own (in the
// background, every `reconnect_wait` per server, `max_reconnect_attempts`
// rounds, or forever when negative) and resends its subscriptions. While it
// reconnects, publishes are buffered (up to `reconnect_buffer_bytes`) and
// requests wait for their own timeouts; callers see UNAVAILABLE or
// DEADLINE_EXCEEDED and retry (JetStream publishes safely: publish.h).
//
// Thread-safety: every method may be called from any thread; the NATS
// connection and JetStream context are thread-safe. Objects made from a
// connection (consumers, buckets, watchers) must be destroyed before it.
#pragma once

#include <nats/nats.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace peakknn::nats {

struct ConnectOptions {
  // "nats://127.0.0.1:4222", ...; the client also learns the rest of the
  // cluster from the servers.
  std::vector<std::string> servers;
  // Try the servers in a random order (spreads clients over the cluster);
  // false: in the order given.
  bool randomize = true;
  std::string name;  // shown in the servers' connection list (/connz)
  absl::Duration connect_timeout = absl::Seconds(2);  // per server tried
  absl::Duration reconnect_wait = absl::Milliseconds(250);
  int max_reconnect_attempts = -1;  // per server; negative: forever
  int reconnect_buffer_bytes = 8 << 20;
  // How long JetStream API requests (stream, consumer and KeyValue
  // management, KeyValue reads and writes) wait for their reply.
  absl::Duration jetstream_timeout = absl::Seconds(5);
};

class NatsConnection {
 public:
  // Connects to the first reachable server of `options.servers`; UNAVAILABLE
  // naming the servers when none answers.
  static absl::StatusOr<std::unique_ptr<NatsConnection>> Connect(
      const ConnectOptions& options);
  // Closes the connection (buffered publishes not yet sent are dropped).
  ~NatsConnection();
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  // The URL of the server in use, or "" while disconnected.
  std::string ConnectedUrl() const;
  // The largest message the server in use accepts, in bytes (its
  // max_payload: 1 MiB by default); 0 while disconnected.
  int64_t MaxPayload() const;

  jsCtx* jetstream() const { return js_; }
  absl::Duration jetstream_timeout() const { return jetstream_timeout_; }
  // Options for one JetStream API request: waits jetstream_timeout.
  jsOptions RequestOptions() const;

 private:
  NatsConnection(natsConnection* conn, jsCtx* js, absl::Duration timeout)
      : conn_(conn), js_(js), jetstream_timeout_(timeout) {}

  natsConnection* const conn_;
  jsCtx* const js_;
  const absl::Duration jetstream_timeout_;
};

}  // namespace peakknn::nats
