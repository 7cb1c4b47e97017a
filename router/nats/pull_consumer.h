// A durable pull consumer: reads one subject of a stream in sequence order,
// for a reader that applies messages one after another and records how far
// it got (a shard replica and its checkpoint).
//
// Open positions the consumer at a stream sequence; Fetch then returns
// messages with sequences next_sequence(), next_sequence() + 1, ... and
// nothing else: a message delivered again (its ack came too late) is
// dropped, and a skipped one is fetched again (the consumer is re-created
// at the gap). The stream holds only this subject's messages for that to
// be exact (one stream per shard: router/cluster_layout.h), since a
// gap must mean "dropped by retention" or "lost in flight".
//
// When the sequence needed next has aged out of the stream (retention, see
// stream.h), Open and Fetch return OUT_OF_RANGE saying which sequences the
// stream still holds: the reader must bootstrap from a peer's snapshot and
// open again at the snapshot's sequence + 1.
//
// Acks are explicit: the reader acks what it has applied. The server keeps
// the durable consumer (and its ack floor) while the reader is away, so a
// reader that did not keep its own position resumes after the last acked
// message (kResumeFromAckFloor). A reader that keeps a checkpoint passes the
// checkpoint's sequence + 1 instead: its checkpoint, not the server's ack
// floor, says what it has applied.
//
// Not thread-safe: one thread at a time.
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "router/nats/connection.h"

namespace peakknn::nats {

struct PullConsumerConfig {
  std::string stream;
  std::string subject;  // the stream's subject it reads
  std::string durable;  // the reader's name: [A-Za-z0-9_-], one per reader
  // A message fetched but not acked within this is delivered again.
  absl::Duration ack_wait = absl::Seconds(30);
  int max_ack_pending = 10000;  // fetched, unacked messages at most
};

// Open's start position: after the durable consumer's last acked message
// (sequence 1 when the durable does not exist yet).
inline constexpr uint64_t kResumeFromAckFloor = 0;

// One fetched message. Valid (and ackable) while its PullConsumer lives.
class ConsumedMessage {
 public:
  uint64_t sequence() const { return sequence_; }  // stream sequence
  std::string_view data() const;

 private:
  friend class PullConsumer;
  struct Deleter {
    void operator()(natsMsg* msg) const { natsMsg_Destroy(msg); }
  };
  ConsumedMessage(natsMsg* msg, uint64_t sequence)
      : msg_(msg), sequence_(sequence) {}

  std::unique_ptr<natsMsg, Deleter> msg_;
  uint64_t sequence_;
};

class PullConsumer {
 public:
  // Creates (or re-creates) the durable consumer `config.durable` so that
  // the first message fetched is `start_sequence` (>= 1), or resumes from
  // its ack floor. Errors: OUT_OF_RANGE (aged out, see above);
  // FAILED_PRECONDITION when start_sequence is past the stream's last
  // sequence + 1 (the stream was deleted and created again); NOT_FOUND
  // without the stream. Cost: 4-5 JetStream API requests.
  static absl::StatusOr<std::unique_ptr<PullConsumer>> Open(
      NatsConnection& conn, const PullConsumerConfig& config,
      uint64_t start_sequence);
  // Leaves the durable consumer on the server.
  ~PullConsumer();
  PullConsumer(const PullConsumer&) = delete;
  PullConsumer& operator=(const PullConsumer&) = delete;

  // Up to `max_messages` (>= 1) messages, the first being next_sequence(),
  // consecutive; waits up to `timeout` for the first and returns as soon as
  // no more are available. Empty when none came in time. One pull request
  // (plus a re-positioning after a gap).
  absl::StatusOr<std::vector<ConsumedMessage>> Fetch(int max_messages,
                                                     absl::Duration timeout);

  // Acks messages the reader has applied. One round trip: the last ack
  // waits for the server's reply, so when Ack returns the durable
  // consumer's ack floor covers them (the others are sent without waiting,
  // and the server handles one connection's messages in order).
  absl::Status Ack(std::span<const ConsumedMessage> messages);

  // The sequence the next fetched message will have.
  uint64_t next_sequence() const { return next_sequence_; }

 private:
  PullConsumer(NatsConnection& conn, const PullConsumerConfig& config)
      : conn_(conn), config_(config) {}
  // Checks that `sequence` is still in the stream, re-creates the durable
  // consumer to deliver from it, and subscribes.
  absl::Status PositionAt(uint64_t sequence);
  std::string Describe() const;  // "consumer D on stream S"

  NatsConnection& conn_;
  const PullConsumerConfig config_;
  natsSubscription* subscription_ = nullptr;
  uint64_t next_sequence_ = 0;
  // A gap was seen after messages already returned: re-create the consumer
  // at next_sequence_ before the next fetch.
  bool reposition_ = false;
};

}  // namespace peakknn::nats
