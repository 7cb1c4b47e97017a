// A JetStream KeyValue bucket: a replicated map from keys to byte strings
// where every write gets a revision (a sequence that grows across the whole
// bucket), so that writers can compare-and-set.
//
// Keys: [-/_=.A-Za-z0-9]+, not starting or ending with '.'; '.' separates
// the tokens a watch pattern matches ('*' one token, '>' the rest).
//
// TTL: a bucket may give every key a time to live (`ttl`, the stream's
// MaxAge): a value disappears `ttl` after its last write, so a key that is
// rewritten periodically (a heartbeat) exists exactly while its writer
// lives. Expiry is silent: Get, Keys and Create see the key gone, watchers
// get no event for it.
//
// Each call below is one JetStream request/reply (a round trip to the
// bucket's stream leader), bounded by the connection's jetstream_timeout,
// except where said. Thread-safe.
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "router/nats/connection.h"

namespace peakknn::nats {

struct KvBucketConfig {
  std::string name;                           // [A-Za-z0-9_-]+
  int replicas = 1;                           // servers holding a copy, 1..5
  int history = 1;                            // values kept per key, 1..64
  absl::Duration ttl = absl::ZeroDuration();  // zero: keys live forever
  int64_t max_bytes = -1;                     // -1: no limit
};

struct KvEntry {
  enum class Op { kPut, kDelete };
  std::string key;
  std::string value;  // empty for kDelete
  uint64_t revision = 0;
  Op op = Op::kPut;
  absl::Time created;  // when this revision was written
};

class KvWatcher;

class KvBucket {
 public:
  // Creates the bucket, or binds to it if it exists with the same
  // configuration (an existing bucket with another configuration is an
  // error naming the difference as the server sees it).
  static absl::StatusOr<std::unique_ptr<KvBucket>> CreateOrBind(
      NatsConnection& conn, const KvBucketConfig& config);
  ~KvBucket();
  KvBucket(const KvBucket&) = delete;
  KvBucket& operator=(const KvBucket&) = delete;

  // The key's latest value, read from the bucket's stream leader (so a
  // write acknowledged before is seen); NOT_FOUND when absent, deleted or
  // expired.
  absl::StatusOr<KvEntry> Get(std::string_view key);
  // Writes unconditionally; returns the new revision.
  absl::StatusOr<uint64_t> Put(std::string_view key, std::string_view value);
  // Writes only if the key is absent (or deleted, or expired): ALREADY_EXISTS
  // naming its revision otherwise. Returns the new revision.
  absl::StatusOr<uint64_t> Create(std::string_view key, std::string_view value);
  // Writes only if the key's latest revision is `expected_revision`:
  // ABORTED naming the key's current revision otherwise (someone else wrote
  // it first: read again and retry). Returns the new revision.
  //
  // Create and Update read the bucket's last sequence and the key, check
  // the condition, and write expecting that last sequence: 3 round trips,
  // and again when any other key of the bucket was written in between, so
  // keep them to buckets with few writes. A write whose ack was lost and
  // that was stored anyway may report ABORTED / ALREADY_EXISTS (its own
  // value is then the key's): re-read before retrying. (The client's own
  // KeyValue
  // create/update, which expect the key's last sequence, are not safe on
  // replicated buckets before nats-server 2.9.21: concurrent writers both
  // succeed. Debian 12 ships 2.9.10.)
  absl::StatusOr<uint64_t> Update(std::string_view key, std::string_view value,
                                  uint64_t expected_revision);
  // Leaves a delete marker (watchers see it); deleting an absent key is OK.
  absl::Status Delete(std::string_view key);
  // Every live key, in no particular order. Reads the whole bucket's latest
  // values through a temporary consumer: O(keys) messages, within the
  // connection's JetStream timeout.
  absl::StatusOr<std::vector<std::string>> Keys();
  // Watches keys matching `pattern` (e.g. "members.>"): polled, see
  // KvWatcher.
  absl::StatusOr<std::unique_ptr<KvWatcher>> Watch(std::string_view pattern);

 private:
  KvBucket(NatsConnection& conn, kvStore* kv, std::string name);
  std::string Describe(std::string_view key) const;  // "key K in bucket B"
  absl::Status CheckKey(std::string_view key) const;
  // Create (expected_revision nullopt) or Update.
  absl::StatusOr<uint64_t> WriteIf(std::string_view key, std::string_view value,
                                   std::optional<uint64_t> expected_revision);

  NatsConnection& conn_;
  kvStore* const kv_;
  const std::string name_;
  const std::string stream_;          // KV_<name>: the bucket's stream
  const std::string subject_prefix_;  // $KV.<name>.: + key = its subject
};

// Updates of the watched keys, polled: first the latest value of every
// matching key, then caught_up() turns true, then each write (puts and
// delete markers) as it happens, in revision order.
//
// Next may be called from one thread at a time; Stop from any thread.
class KvWatcher {
 public:
  ~KvWatcher();
  KvWatcher(const KvWatcher&) = delete;
  KvWatcher& operator=(const KvWatcher&) = delete;

  // The next update, waiting up to `timeout`; nullopt when none came in
  // time, or when the initial values have all been delivered (caught_up()
  // turns true then). CANCELLED after Stop.
  absl::StatusOr<std::optional<KvEntry>> Next(absl::Duration timeout);
  bool caught_up() const { return caught_up_; }
  // Wakes a Next in progress; every later Next returns CANCELLED.
  void Stop();

 private:
  friend class KvBucket;
  KvWatcher(kvWatcher* watcher, std::string description)
      : watcher_(watcher), description_(std::move(description)) {}

  kvWatcher* const watcher_;
  const std::string description_;
  bool caught_up_ = false;
};

}  // namespace peakknn::nats
