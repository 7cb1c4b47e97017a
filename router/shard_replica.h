// The shard role: one replica of one shard of every collection in the
// cluster's metadata, kept as collections of a local ServiceCore (the
// standalone store, CollectionManager) that serves the replica's searches.
//
// Every poll_interval (and once at Start) it
//   - reconciles: lists the collections in the metadata bucket; for each
//     one with a shard `shard`, makes sure the local collection exists and
//     a CollectionApplier (collection_applier.h) applies its shard stream;
//     stops, forgets and drops local collections that the metadata no
//     longer lists (or lists under a new creation revision: dropped and
//     created again, a new stream);
//   - heartbeats: writes its ClusterMember record (address, applied
//     sequence per collection) to the members bucket, which forgets it
//     member_ttl after the last write (cluster_metadata.h).
// Polling rather than a KvWatcher: the listing is the state to converge
// to, so a missed or reordered event cannot leave a replica wrong, and one
// timer serves reconciliation and heartbeats (a few round trips per
// collection per poll_interval).
//
// Where each collection resumes: its AppliedPositions file
// (applied_position.h). A local collection without a position file for the
// same creation revision (a crash between create and first record, or a
// leftover of an earlier incarnation) is dropped and rebuilt from stream
// sequence 1. Drops from metadata are done in the opposite order (position
// first, then the collection) for the same reason.
//
// A failed listing changes nothing (it never drops collections); it is
// logged and retried at the next poll.
//
// Not yet: bootstrap from a peer when the stream has aged out (the applier
// halts with OUT_OF_RANGE saying so), readiness gating ("usable once every
// shard has a live replica" is the router's to check from the members).
//
// Thread-safety: Collections() may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/periodic_task.h"
#include "router/applied_position.h"
#include "router/cluster_metadata.h"
#include "router/collection_applier.h"
#include "router/nats/connection.h"
#include "store/env.h"
#include "store/service_core.h"
#include "store/store_log.h"

namespace peakknn {

struct ShardReplicaOptions {
  int shard = 0;
  // Unique per shard, [A-Za-z0-9_-]: its member key and durable consumers.
  std::string replica;
  std::string address;    // host:port of its gRPC service, for the router
  std::string state_dir;  // AppliedPositions files; created if missing
  Env* env = nullptr;     // nullptr: Env::Default()
  // Reconcile and heartbeat this often: several times per member_ttl.
  absl::Duration poll_interval = absl::Seconds(2);
  int max_fetch = 256;  // see ApplierConfig
  absl::Duration fetch_wait = absl::Milliseconds(500);
  absl::Duration retry_interval = absl::Seconds(1);
  LogFunction log;  // empty: standard error
};

// One collection as the replica holds it.
struct ReplicaCollection {
  std::string name;
  uint64_t creation_revision = 0;
  ApplierProgress progress;
};

class ShardReplica {
 public:
  // Reconciles and heartbeats once (failures logged, then retried), then
  // starts the poll thread. Errors only for an unusable state_dir or bad
  // options. Everything passed in must outlive the replica; `local` must be
  // ready (recovered) and hold only this replica's collections.
  static absl::StatusOr<std::unique_ptr<ShardReplica>> Start(
      nats::NatsConnection& conn, ClusterMetadata& metadata, ServiceCore& local,
      const ShardReplicaOptions& options);
  // Stops (see Stop).
  ~ShardReplica();
  ShardReplica(const ShardReplica&) = delete;
  ShardReplica& operator=(const ShardReplica&) = delete;

  // Stops polling and every applier; the local collections and positions
  // stay. Idempotent.
  void Stop();

  // Sorted by name.
  std::vector<ReplicaCollection> Collections() const;
  // The stream sequence applied to `collection`'s local copy and visible to
  // its searches (0 when the replica does not hold it).
  uint64_t AppliedSequence(const std::string& collection) const;

 private:
  ShardReplica(nats::NatsConnection& conn, ClusterMetadata& metadata,
               ServiceCore& local, const ShardReplicaOptions& options,
               Env* env);
  void Poll();
  absl::Status Reconcile();
  absl::Status Heartbeat();
  // Creates or resumes the local copy of `record` and starts its applier.
  absl::Status Add(const CollectionRecord& record);
  // Stops its applier (if any), forgets its position, drops it locally.
  absl::Status Remove(const std::string& name);

  nats::NatsConnection& conn_;
  ClusterMetadata& metadata_;
  ServiceCore& local_;
  const ShardReplicaOptions options_;
  const LogFunction log_;
  LogThrottle poll_log_;  // for failures that repeat every poll
  AppliedPositions positions_;

  mutable std::mutex mu_;
  // Changed by the poll thread only (and Start before it runs); mu_ for
  // Collections() and Heartbeat's readers.
  std::map<std::string, std::unique_ptr<CollectionApplier>> appliers_
      ABSL_GUARDED_BY(mu_);

  std::unique_ptr<PeriodicTask> poll_;
};

}  // namespace peakknn
