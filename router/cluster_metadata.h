// The cluster's metadata in NATS KeyValue buckets (names and keys:
// cluster_layout.h): which collections exist (schema, shard count), and
// which shard replicas are alive, where, and how far each has applied.
//
//   peakknn-meta     collections.<name> -> ClusterCollection
//                    no expiry; history 8 (the last values of a key)
//   peakknn-members  members.<shard>.<replica> -> ClusterMember
//                    every key expires member_ttl after its last write
//
// Records are protobuf messages (proto/peakknn/v1/cluster.proto), not JSON
// or text: the project already builds protobuf, its field numbers give
// forward and backward compatibility without a version field or a parser
// of our own, and the collection schema is the public API's own message.
// Decode checks what the router relies on (the key matches the record, a
// valid shard count) and reports anything else as DATA_LOSS naming the
// key.
//
// A collection record is written once (CreateCollection) and deleted on
// drop, never updated: its KeyValue revision is its creation revision, a
// number that tells this incarnation of a name from an earlier one.
//
// Thread-safe; each call costs the round trips it states.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "peakknn/v1/cluster.pb.h"
#include "router/nats/connection.h"
#include "router/nats/kv_bucket.h"

namespace peakknn {

std::string EncodeCollection(const v1::ClusterCollection& collection);
// `key` is the record's key (collections.<name>).
absl::StatusOr<v1::ClusterCollection> DecodeCollection(std::string_view key,
                                                       std::string_view bytes);
std::string EncodeMember(const v1::ClusterMember& member);
// `key` is the record's key (members.<shard>.<replica>).
absl::StatusOr<v1::ClusterMember> DecodeMember(std::string_view key,
                                               std::string_view bytes);

struct CollectionRecord {
  v1::ClusterCollection collection;
  uint64_t creation_revision = 0;
};

struct ClusterMetadataOptions {
  int replicas = 3;  // copies of both buckets in NATS
  // A replica that misses heartbeats this long drops out of ListMembers.
  // Replicas should heartbeat several times per TTL.
  absl::Duration member_ttl = absl::Seconds(10);
};

class ClusterMetadata {
 public:
  // Creates or binds both buckets (2 round trips each).
  static absl::StatusOr<std::unique_ptr<ClusterMetadata>> Open(
      nats::NatsConnection& conn, const ClusterMetadataOptions& options);

  // Registers a collection: ALREADY_EXISTS when the name is taken,
  // INVALID_ARGUMENT for a shard count outside [1, kMaxShards] or an empty
  // name. Returns the creation revision. 3 round trips (KvBucket::Create).
  absl::StatusOr<uint64_t> CreateCollection(
      const v1::ClusterCollection& collection);
  // NOT_FOUND when there is none. One round trip.
  absl::StatusOr<CollectionRecord> GetCollection(std::string_view name);
  // Sorted by name. 1 + collections round trips.
  absl::StatusOr<std::vector<CollectionRecord>> ListCollections();
  // Deleting an absent collection is OK. One round trip.
  absl::Status DeleteCollection(std::string_view name);

  // Writes the member's record (its heartbeat). One round trip.
  absl::Status Heartbeat(const v1::ClusterMember& member);
  // Members whose last heartbeat is younger than member_ttl, sorted by
  // (shard, replica). 1 + members round trips.
  absl::StatusOr<std::vector<v1::ClusterMember>> ListMembers();

 private:
  ClusterMetadata(std::unique_ptr<nats::KvBucket> meta,
                  std::unique_ptr<nats::KvBucket> members)
      : meta_(std::move(meta)), members_(std::move(members)) {}

  const std::unique_ptr<nats::KvBucket> meta_;
  const std::unique_ptr<nats::KvBucket> members_;
};

}  // namespace peakknn
