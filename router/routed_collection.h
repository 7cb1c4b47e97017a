// One collection of the cluster as the router serves it (the
// ServedCollection of router_core.h): searches and reads fanned out to one
// replica of every shard (shard_fanout.h), writes published to the shards'
// write streams.
//
// Search: the router plans for the collection's live rows over all shards
// (PlanShardedSearch, router/sharded_search.h) and asks every shard for the
// same k with its share of the bins (or an exact top-k), then merges the
// shards' answers. The row count planned for is the members' last
// heartbeats' (at most a few seconds old); the answer reports the recall of
// the bins used over the rows the shards actually searched (their live
// rows, summed), so a report is never rosier than what ran. Replicas are
// tried in a rotating order per shard, one at a time per shard (failover,
// no hedged second request yet).
//
// Writes: the batch is checked against the schema (CheckWriteBatch: what a
// replica checks before applying, so nothing a replica would refuse is
// published), split by ShardForId, and each shard's part is published to
// its stream with a message id unique to this write (router process id,
// a random 64-bit tag and a counter, plus the shard), so Publish's own
// retries never store it twice. The acknowledgement (a majority of the
// stream's NATS servers stored it) is the durability point; the ack's
// `sequence` is the highest shard stream sequence of the batch. A shard's
// part larger than one NATS message (max_payload, 1 MiB by default: 2040
// rows of 128-d f32) is published as several messages, in order, so a
// batch is atomic per message only.
//
// Not like a standalone server:
//   - Insert does not refuse ids that exist: the router cannot see every
//     shard's rows at once without a read-modify-write across processes,
//     so an insert through the router replaces existing rows (as upsert).
//   - Durability: the acknowledgement means "stored by a majority of the
//     stream's servers" (JetStream file storage, fsynced on the servers'
//     own schedule, not per write), reported as DURABILITY_NONE; a request
//     for FSYNC is served the same way. Replicas apply with fsync.
//   - Reads are eventual by default: each replica serves what it has
//     applied. Session reads (the tokens of the client's writes) and
//     strong reads (each shard stream's last sequence when the read starts)
//     send each shard's replica min_applied_sequence, which it waits for
//     (replica_core.h) within the attempt's deadline; such reads are
//     searched alone, not batched with others (server/batcher.h).
//   - Row counts (row_counts, Describe) are the members' last heartbeats'.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/schema.h"
#include "peakknn/v1/cluster.pb.h"
#include "router/cluster_view.h"
#include "router/nats/connection.h"
#include "router/shard_channels.h"
#include "router/shard_fanout.h"
#include "store/service_core.h"

namespace peakknn {

// What the router's collections share (owned by the RouterCore).
struct RouterContext {
  nats::NatsConnection* conn = nullptr;
  ClusterView* view = nullptr;
  ShardChannels* channels = nullptr;
  FanOutOptions fan_out;
  absl::Duration publish_timeout = absl::Seconds(10);
};

class RoutedCollection final : public ServedCollection {
 public:
  RoutedCollection(const RouterContext& context, CollectionSchema schema,
                   CollectionRecord record);

  const CollectionSchema& schema() const override { return schema_; }
  uint64_t creation_revision() const { return record_.creation_revision; }
  int shard_count() const { return shard_count_; }

  absl::StatusOr<SearchResults> Search(
      std::span<const float> queries, const SearchParams& params,
      const ReadConsistency& consistency) const override;
  void WriteAsync(WriteMode mode, std::span<const uint64_t> ids,
                  std::span<const float> vectors, const WriteOptions& options,
                  WriteCallback done,
                  std::shared_ptr<const void> owner = nullptr) override;
  void DeleteAsync(std::span<const uint64_t> ids, const WriteOptions& options,
                   WriteCallback done) override;
  absl::StatusOr<std::vector<std::optional<std::vector<float>>>> Get(
      std::span<const uint64_t> ids,
      const ReadConsistency& consistency) const override;
  RowCounts row_counts() const override;

 private:
  // Per shard, the stream sequence a read must see (0: any): the session
  // token's, and for a strong read the shard stream's last sequence (one
  // JetStream request per shard). INVALID_ARGUMENT for a token of another
  // shard count.
  absl::StatusOr<std::vector<uint64_t>> ReadFloors(
      const ReadConsistency& consistency) const;
  // Per shard, the live members holding this collection, rotated by a
  // counter so consecutive calls start at different replicas; members whose
  // last heartbeat had already applied the shard's floor come first.
  std::vector<ShardTargets> Targets(const std::vector<uint64_t>& floors) const;
  // Rows of this collection that fit one NATS message.
  int64_t RowsPerMessage() const;
  // Publishes each shard's part of a batch (in messages of at most
  // RowsPerMessage rows); the highest sequence.
  absl::StatusOr<WriteAck> Publish(v1::ShardWriteBatch::Mode mode,
                                   std::span<const uint64_t> ids,
                                   std::span<const float> vectors);

  const RouterContext context_;
  const CollectionSchema schema_;
  const CollectionRecord record_;
  const int shard_count_;
  mutable std::atomic<uint64_t> rotation_{0};
};

}  // namespace peakknn
