// Where cluster mode keeps things in NATS: bucket, key, stream, subject and
// consumer names, and the settings of each shard's write stream. Every name
// is built here and nowhere else.
//
//   KeyValue bucket peakknn-meta (no expiry; cluster_metadata.h)
//     collections.<collection>         ClusterCollection record
//   KeyValue bucket peakknn-members (keys expire; cluster_metadata.h)
//     members.<shard>.<replica>        ClusterMember record (a heartbeat)
//   Stream peakknn_<collection>_<shard>, one per shard of each collection,
//     subject peakknn.writes.<collection>.<shard>: the shard's write log,
//     read by each replica of the shard through its durable consumer named
//     <replica>.
//
// Collection names are [A-Za-z0-9_-]{1,64} (engine/schema.h) and shards
// are numbers, so every name above is unique and valid in NATS (no '.',
// '*', '>' or whitespace inside a token).
//
// One stream per shard, not one per collection with a subject per shard:
// a shard's messages then have consecutive sequences, so a replica can tell
// a message it missed (a gap) and whether the next one it needs has aged
// out (the stream's first sequence is past it), and "strong" reads compare
// a replica's applied sequence with one number, its stream's last sequence.
// The shards' streams also have their own Raft leaders, so writes to
// different shards are stored in parallel.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "router/nats/stream.h"

namespace peakknn {

inline constexpr std::string_view kMetadataBucket = "peakknn-meta";
inline constexpr std::string_view kMembersBucket = "peakknn-members";

// Whether `name` (a collection or replica name) can go into the names above
// as one token: 1+ characters of [A-Za-z0-9_-].
bool IsNameToken(std::string_view name);

std::string CollectionKey(std::string_view collection);
std::string MemberKey(int shard, std::string_view replica);

std::string ShardStreamName(std::string_view collection, int shard);
std::string ShardSubject(std::string_view collection, int shard);

// Retention and dedup of the shards' write streams.
//
// Retention bounds how far a replica may fall behind (or how long it may be
// down) and still catch up from the stream: past it, it bootstraps from a
// peer's checkpoint. It is not what keeps the data (the replicas'
// checkpoints are), except for writes that no replica has applied yet: the
// oldest messages go first when a limit is hit, so a shard whose replicas
// all lag by more than the retention loses those writes. Size it to hold
// hours of writes at peak rate and alert on replica lag (the stream's last
// sequence minus a member's applied sequence) well before it.
struct ShardStreamSettings {
  // Copies in NATS: a write is acknowledged once a majority has it; 3
  // survives the loss of one NATS server. At most the NATS cluster's size.
  int replicas = 3;
  int64_t max_bytes = int64_t{1} << 30;  // per shard, per copy: 1 GiB
  absl::Duration max_age = absl::Hours(24 * 7);
  // A router retrying a publish (same message id) within this window does
  // not store the batch twice. Much longer than a publish's retries (10 s),
  // short enough that the server's table of ids stays small.
  absl::Duration duplicate_window = absl::Minutes(2);
};

nats::StreamConfig ShardStreamConfig(std::string_view collection, int shard,
                                     const ShardStreamSettings& settings);

}  // namespace peakknn
