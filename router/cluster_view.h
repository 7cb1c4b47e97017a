// The router's picture of the cluster: which collections exist (their
// metadata records) and which replicas of each shard are alive, where, and
// how far each has applied each collection; refreshed from the metadata
// buckets (cluster_metadata.h) every `refresh_interval` on a thread of its
// own.
//
// Readers take an immutable snapshot (one shared_ptr copy under a mutex), so
// a search never waits for a refresh and always sees one consistent
// listing. A refresh that fails keeps the last good snapshot (logged, at
// most every 30 s); Ready() says whether there has ever been one.
//
// Staleness: a snapshot is at most refresh_interval + the listing's round
// trips old; members heartbeat every 2 s (shard_replica.h) and vanish
// member_ttl (10 s) after their last one. So a replica that died stays
// listed up to ~10 s: the router's calls to it fail over to the next
// replica (routed_collection.h), they do not wait for the listing.
//
// Cost per refresh: 2 + collections + members round trips to NATS.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/periodic_task.h"
#include "peakknn/v1/cluster.pb.h"
#include "router/cluster_metadata.h"
#include "store/store_log.h"

namespace peakknn {

struct ClusterSnapshot {
  // By collection name.
  std::map<std::string, CollectionRecord> collections;
  // Live members by shard, each sorted by replica name.
  std::map<int, std::vector<v1::ClusterMember>> members;

  // The members of `shard` (empty when none is alive).
  const std::vector<v1::ClusterMember>& MembersOf(int shard) const;
  // The collection's live rows over its shards: per shard the largest
  // count a live member reported (replicas converge to the same rows; the
  // most advanced is the one that bounds the recall plan).
  int64_t LiveRows(const std::string& collection, int shard_count) const;
};

struct ClusterViewOptions {
  absl::Duration refresh_interval = absl::Milliseconds(500);
  LogFunction log;  // empty: standard error
};

class ClusterView {
 public:
  // Refreshes once (a failure is logged, not returned: Ready() tells) and
  // starts the refresh thread. `metadata` must outlive the view.
  ClusterView(ClusterMetadata& metadata, const ClusterViewOptions& options);
  ~ClusterView();
  ClusterView(const ClusterView&) = delete;
  ClusterView& operator=(const ClusterView&) = delete;

  // OK once a refresh succeeded; UNAVAILABLE with the last error before.
  absl::Status Ready() const;
  // The latest good listing (empty before the first).
  std::shared_ptr<const ClusterSnapshot> Snapshot() const;
  // Refreshes now, on the caller's thread (e.g. right after a create or
  // drop, so this router's next request sees it).
  absl::Status Refresh();

 private:
  ClusterMetadata& metadata_;
  const LogFunction log_;
  LogThrottle refresh_log_;

  mutable std::mutex mu_;
  std::shared_ptr<const ClusterSnapshot> snapshot_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  bool ever_refreshed_ ABSL_GUARDED_BY(mu_) = false;

  std::unique_ptr<PeriodicTask> refresher_;  // last: stops first
};

}  // namespace peakknn
