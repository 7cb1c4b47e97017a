// The service core (store/service_core.h) that a shard replica serves to
// gRPC clients: its local store, read-only. Searches, Get, listing and
// describing go to the local collections; creates, drops and writes fail
// with FAILED_PRECONDITION "this server is a shard replica: write through
// the router", because the replica's collections change only by applying
// its shard's write stream (shard_replica.h): a write taken here would
// exist on this replica alone and be overwritten or lost.
//
// Reads at a stream position: a router that needs a read to see a write
// (session and strong consistency, router/routed_collection.h) sends
// min_applied_sequence; the handle's AwaitApplied waits until the replica's
// applier has applied its shard's stream that far (SetAppliedSequence
// connects it once the replica has joined its cluster).
//
// Thread-safety: as ServiceCore.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/service_core.h"

namespace peakknn {

class ReplicaCore final : public ServiceCore {
 public:
  // `local` (not owned) must outlive this.
  explicit ReplicaCore(ServiceCore* local) : local_(local) {}

  absl::Status Ready() const override { return local_->Ready(); }
  absl::Status CreateCollection(const CollectionSchema& schema,
                                Durability durability) override;
  absl::Status DropCollection(std::string_view name) override;
  absl::StatusOr<std::vector<CollectionInfo>> ListCollections() const override {
    return local_->ListCollections();
  }
  absl::StatusOr<CollectionInfo> DescribeCollection(
      std::string_view name) const override {
    return local_->DescribeCollection(name);
  }
  // A handle whose writes fail as above: one per local handle, so that
  // callers can still tell a re-created collection from the old one
  // (server/batcher_registry.h keys its batchers on the handle).
  absl::StatusOr<std::shared_ptr<ServedCollection>> OpenCollection(
      std::string_view name) const override;
  CoreStats Stats() const override { return local_->Stats(); }

  // The stream sequence `collection` has applied (0 when it has not
  // started); set once the replica runs (ShardReplica::AppliedSequence).
  using AppliedSequenceFn =
      std::function<uint64_t(const std::string& collection)>;
  void SetAppliedSequence(AppliedSequenceFn applied);
  // nullopt until SetAppliedSequence.
  std::optional<uint64_t> AppliedSequence(const std::string& collection) const;

 private:
  ServiceCore* const local_;
  mutable std::mutex applied_mu_;
  AppliedSequenceFn applied_ ABSL_GUARDED_BY(applied_mu_);

  struct Wrapped {
    // The local handle `wrapper` wraps; valid while `wrapper` lives (it
    // holds the local handle).
    const ServedCollection* local = nullptr;
    std::weak_ptr<ServedCollection> wrapper;
  };
  mutable std::mutex mu_;
  // By collection name.
  mutable absl::flat_hash_map<std::string, Wrapped> wrapped_
      ABSL_GUARDED_BY(mu_);
};

// The error of every write a replica refuses.
absl::Status ReplicaWriteError();

}  // namespace peakknn
