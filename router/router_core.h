// The router role's service core (store/service_core.h): the cluster behind
// the same calls a standalone server serves, so the gRPC layer (server/)
// and every client are unchanged. Stateless: everything it knows is in
// NATS (metadata buckets, shard streams) or on the replicas.
//
//   Ready            the cluster view has loaded the metadata once
//   Create           the collection's shard streams (idempotent), then its
//                    record (create-if-absent: of two routers creating one
//                    name, one gets ALREADY_EXISTS); then waits (up to
//                    options.create_wait) until every shard has a live
//                    replica that created it, so that it is usable when the
//                    call returns (replicas reconcile every 2 s). Past the
//                    wait it returns OK all the same: the collection exists,
//                    and reads say which shard has no replica yet
//   Drop             the record first (replicas then drop their copies),
//                    then the streams
//   List / Describe  the records, with the live rows the members last
//                    reported
//   OpenCollection   a RoutedCollection (routed_collection.h): one handle
//                    per creation revision, so a name dropped and created
//                    again gets a new handle (and batcher)
//
// New collections get options.shards shards and options.stream_replicas
// copies of each stream (ShardStreamSettings); the shard count is fixed
// for the collection's life.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "router/cluster_layout.h"
#include "router/cluster_metadata.h"
#include "router/cluster_view.h"
#include "router/nats/connection.h"
#include "router/routed_collection.h"
#include "router/shard_channels.h"
#include "store/service_core.h"

namespace peakknn {

struct RouterOptions {
  int shards = 1;  // of each new collection, 1 to kMaxShards
  ShardStreamSettings streams;
  // A replica's answer to one attempt of a search or read; past it the
  // next replica of the shard is tried.
  absl::Duration attempt_timeout = absl::Seconds(5);
  absl::Duration publish_timeout = absl::Seconds(10);
  absl::Duration create_wait = absl::Seconds(15);
  ClusterViewOptions view;
  ShardChannelOptions channels;
};

class RouterCore final : public ServiceCore {
 public:
  // `conn` and `metadata` must outlive the core.
  RouterCore(nats::NatsConnection& conn, ClusterMetadata& metadata,
             RouterOptions options);
  ~RouterCore() override;

  absl::Status Ready() const override { return view_.Ready(); }
  absl::Status CreateCollection(const CollectionSchema& schema,
                                Durability durability) override;
  absl::Status DropCollection(std::string_view name) override;
  absl::StatusOr<std::vector<CollectionInfo>> ListCollections() const override;
  absl::StatusOr<CollectionInfo> DescribeCollection(
      std::string_view name) const override;
  absl::StatusOr<std::shared_ptr<ServedCollection>> OpenCollection(
      std::string_view name) const override;
  CoreStats Stats() const override { return {.backend = "router"}; }

 private:
  // Whether every shard of `name` has a live member that created it.
  bool Usable(const ClusterSnapshot& snapshot, const std::string& name,
              int shards) const;
  // The collection's info from a snapshot's record.
  absl::StatusOr<CollectionInfo> InfoOf(const ClusterSnapshot& snapshot,
                                        const CollectionRecord& record) const;

  nats::NatsConnection& conn_;
  ClusterMetadata& metadata_;
  const RouterOptions options_;
  ShardChannels channels_;
  ClusterView view_;
  const RouterContext context_;

  mutable std::mutex mu_;
  // By name: the handle of the collection's current incarnation.
  mutable absl::flat_hash_map<std::string, std::shared_ptr<RoutedCollection>>
      handles_ ABSL_GUARDED_BY(mu_);
};

}  // namespace peakknn
