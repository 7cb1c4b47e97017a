// The store: named, durable collections in one data directory; the service
// core (store/service_core.h) of the standalone server. Knows nothing about
// gRPC.
//
//   data_dir/<name>/   one DurableCollection each (store/durable_collection.h)
//   data_dir/<name>.creating, <name>.dropping   leftovers of an interrupted
//                      create or drop, removed at recovery
// (store/data_dir.h has the whole layout.)
//
// Status codes: NOT_FOUND for a missing collection, ALREADY_EXISTS for a
// duplicate name or (insert) id, INVALID_ARGUMENT naming the field for bad
// input, UNAVAILABLE while recovering, DATA_LOSS when recovery finds a corrupt
// log or checkpoint, FAILED_PRECONDITION when it finds a format version this
// build does not read, RESOURCE_EXHAUSTED for a create beyond
// max_collections, RESOURCE_EXHAUSTED / INTERNAL for disk errors (with the
// file and OS error).
//
// Resources: an idle collection holds memory only, no thread and no file
// descriptor; a writing one holds its commit thread and up to kMaxWalFds
// descriptors (store/durable_collection.h). max_collections bounds how many
// collections there are, so that a process can size its open-file limit
// (server/fd_limit.h). Collections found at recovery are all served even
// beyond it: a limit lowered (or a directory copied in) must never stop a
// restart; creates are then refused until drops bring the count below it.
//
// Thread-safety: every method may be called from any thread. Writes to one
// collection are ordered by their sequence numbers; an acknowledged write is
// durable (per its durability) and visible to every search that starts
// after the acknowledgement. Searches never wait for writers.
//
// Background work: one maintenance thread takes checkpoints (log size or
// age) and compacts blocks past the dead-row threshold. A checkpoint that
// keeps failing is logged once a minute, not on every pass.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/periodic_task.h"
#include "engine/collection.h"
#include "engine/schema.h"
#include "store/durability.h"
#include "store/durable_collection.h"
#include "store/env.h"
#include "store/service_core.h"
#include "store/store_log.h"

namespace peakknn {

// A DurableCollection served through ServiceCore (collection_manager.cc).
class ManagedCollection;

struct ManagerOptions {
  std::string data_dir;        // created if missing
  Env* env = nullptr;          // nullptr: Env::Default()
  ThreadPool* pool = nullptr;  // for searches; nullptr: ThreadPool::Default()
  // Where searches run (not owned); nullptr: the CPU backend over `pool`.
  SearchBackend* backend = nullptr;
  int64_t block_rows = 65536;  // see CollectionOptions
  // Durability of collections created with Durability::kDefault.
  Durability default_durability = Durability::kFsync;
  // Checkpoint a collection when its log reaches this many bytes, or when
  // it has logged anything and the last checkpoint is older than
  // checkpoint_max_age.
  int64_t checkpoint_wal_bytes = int64_t{256} << 20;
  absl::Duration checkpoint_max_age = absl::Minutes(5);
  // Compact full blocks with at least this fraction of rows deleted.
  double compaction_dead_fraction = 0.3;
  // How often the maintenance thread looks; <= 0 disables it (tests).
  absl::Duration maintenance_interval = absl::Seconds(1);
  int64_t wal_segment_bytes = int64_t{64} << 20;
  // Recovery: cut the log at a corrupt record instead of refusing to start.
  bool truncate_corrupt_wal = false;
  // CreateCollection fails with RESOURCE_EXHAUSTED once this many
  // collections exist (the server's --max_collections; see above).
  int64_t max_collections = 1000;
  // See DurableCollectionOptions::idle_timeout.
  absl::Duration collection_idle_timeout = absl::Seconds(5);
  // Recovery and maintenance log lines; empty: standard error.
  LogFunction log;
  // Timing observers for metrics, passed to every collection (see
  // DurableCollectionOptions): each WAL group fsync, each checkpoint written.
  std::function<void(absl::Duration)> on_wal_fsync;
  std::function<void(absl::Duration)> on_checkpoint;
};

class CollectionManager final : public ServiceCore {
 public:
  // Opens (recovering every collection in) options.data_dir. Equivalent to
  // Create then Recover.
  static absl::StatusOr<std::unique_ptr<CollectionManager>> Open(
      const ManagerOptions& options);
  // A manager that has not recovered yet: every call but Ready() returns
  // UNAVAILABLE until Recover succeeds. Lets a server answer health checks
  // with NOT_SERVING while Recover runs on another thread.
  static std::unique_ptr<CollectionManager> Create(
      const ManagerOptions& options);
  // Loads every collection (checkpoint + log replay) and starts background
  // maintenance. Fails with the first collection's error (DATA_LOSS names
  // the file and offset).
  absl::Status Recover();

  // Clean shutdown: drains writes, checkpoints every collection, stops the
  // maintenance thread. Called by the destructor if not called before.
  absl::Status Close();
  ~CollectionManager() override;

  // ServiceCore. Ready() is UNAVAILABLE until Recover succeeded and
  // FAILED_PRECONDITION after Close. kDefault durability takes
  // options.default_durability.
  absl::Status Ready() const override;
  absl::Status CreateCollection(const CollectionSchema& schema,
                                Durability durability) override;
  absl::Status DropCollection(std::string_view name) override;
  absl::StatusOr<std::vector<CollectionInfo>> ListCollections() const override;
  absl::StatusOr<CollectionInfo> DescribeCollection(
      std::string_view name) const override;
  absl::StatusOr<std::shared_ptr<ServedCollection>> OpenCollection(
      std::string_view name) const override;
  CoreStats Stats() const override;

  // Blocking conveniences over OpenCollection, for tools and tests: each
  // returns once its batch is acknowledged (or refused).
  absl::StatusOr<WriteAck> Insert(std::string_view name,
                                  std::span<const uint64_t> ids,
                                  std::span<const float> vectors,
                                  const WriteOptions& options = {});
  absl::StatusOr<WriteAck> Upsert(std::string_view name,
                                  std::span<const uint64_t> ids,
                                  std::span<const float> vectors,
                                  const WriteOptions& options = {});
  absl::StatusOr<WriteAck> Delete(std::string_view name,
                                  std::span<const uint64_t> ids,
                                  const WriteOptions& options = {});
  absl::StatusOr<std::vector<std::optional<std::vector<float>>>> Get(
      std::string_view name, std::span<const uint64_t> ids) const;
  // Checks the queries, then searches.
  absl::StatusOr<SearchResults> Search(std::string_view name,
                                       std::span<const float> queries,
                                       const SearchParams& params) const;

  // Maintenance on demand (also run in the background).
  absl::Status Checkpoint(std::string_view name);
  absl::StatusOr<int64_t> Compact(std::string_view name);  // blocks rewritten

 private:
  explicit CollectionManager(const ManagerOptions& options);
  // The named collection's handle (one per collection: OpenCollection
  // returns the same one each time, so callers can tell a dropped and
  // re-created collection from the old one), or NOT_FOUND / UNAVAILABLE
  // (recovering) / FAILED_PRECONDITION (closed).
  absl::StatusOr<std::shared_ptr<ManagedCollection>> FindHandle(
      std::string_view name) const;
  absl::StatusOr<std::shared_ptr<DurableCollection>> Find(
      std::string_view name) const;
  DurableCollectionOptions CollectionOptionsFor() const;
  // One pass of background maintenance over every collection.
  void RunMaintenance();

  const ManagerOptions options_;
  Env* const env_;
  const LogFunction log_;

  mutable std::mutex mu_;
  bool recovering_ ABSL_GUARDED_BY(mu_) = true;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, std::shared_ptr<ManagedCollection>>
      collections_ ABSL_GUARDED_BY(mu_);
  // Serialises create and drop (directory renames) without holding mu_.
  std::mutex ddl_mu_;

  // Checkpoints and compaction every options_.maintenance_interval; null
  // when disabled (or not recovered yet).
  std::unique_ptr<PeriodicTask> maintenance_;
};

}  // namespace peakknn
