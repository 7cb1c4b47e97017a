// The store: named, durable collections in one data directory. This is the
// API the server calls; it knows nothing about gRPC.
//
//   data_dir/<name>/   one DurableCollection each (engine/durable_collection.h)
//   data_dir/<name>.creating, <name>.dropping   leftovers of an interrupted
//                      create or drop, removed at recovery
//
// Status codes: NOT_FOUND for a missing collection, ALREADY_EXISTS for a
// duplicate name or (insert) id, INVALID_ARGUMENT naming the field for bad
// input, UNAVAILABLE while recovering, DATA_LOSS when recovery finds a corrupt
// log or checkpoint, RESOURCE_EXHAUSTED / INTERNAL for disk errors (with the
// file and OS error).
//
// Thread-safety: every method may be called from any thread. Writes to one
// collection are ordered by their sequence numbers; an acknowledged write is
// durable (per its durability) and visible to every search that starts
// after the acknowledgement. Searches never wait for writers.
//
// Background work: one maintenance thread takes checkpoints (log size or
// age) and compacts blocks past the dead-row threshold.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/collection.h"
#include "engine/durability.h"
#include "engine/durable_collection.h"
#include "engine/env.h"
#include "engine/schema.h"

namespace peakknn {

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
  // Recovery and maintenance log lines; nullptr: standard error.
  std::function<void(std::string_view)> log;
  // Timing observers for metrics, passed to every collection (see
  // DurableCollectionOptions): each WAL group fsync, each checkpoint written.
  std::function<void(absl::Duration)> on_wal_fsync;
  std::function<void(absl::Duration)> on_checkpoint;
};

struct WriteOptions {
  Durability durability = Durability::kDefault;  // the collection's default
};

struct CollectionInfo {
  CollectionSchema schema;
  Durability default_durability = Durability::kFsync;
  int64_t rows = 0;       // slots used, deleted rows not yet compacted included
  int64_t live_rows = 0;  // rows a search can return
  int64_t memory_bytes = 0;
  int64_t disk_bytes = 0;         // checkpoint + log
  uint64_t applied_sequence = 0;  // last write visible to searches
  uint64_t durable_sequence = 0;  // last write on stable storage
};

class CollectionManager {
 public:
  // Opens (recovering every collection in) options.data_dir. Equivalent to
  // Create then Recover.
  static absl::StatusOr<std::unique_ptr<CollectionManager>> Open(
      const ManagerOptions& options);
  // A manager that has not recovered yet: every call but recovering()
  // returns UNAVAILABLE until Recover succeeds. Lets a server answer health
  // checks with NOT_SERVING while Recover runs on another thread.
  static std::unique_ptr<CollectionManager> Create(
      const ManagerOptions& options);
  // Loads every collection (checkpoint + log replay) and starts background
  // maintenance. Fails with the first collection's error (DATA_LOSS names
  // the file and offset).
  absl::Status Recover();
  bool recovering() const;

  // Clean shutdown: drains writes, checkpoints every collection, stops the
  // maintenance thread. Called by the destructor if not called before.
  absl::Status Close();
  ~CollectionManager();

  // schema.name must pass ValidateSchema. kDefault durability takes
  // options.default_durability.
  absl::Status CreateCollection(const CollectionSchema& schema,
                                Durability durability = Durability::kDefault);
  // Deletes the collection and its files. Searches already running on it
  // finish on their snapshot.
  absl::Status DropCollection(std::string_view name);
  std::vector<std::string> ListCollections() const;  // sorted
  absl::StatusOr<CollectionInfo> Describe(std::string_view name) const;

  // Writes: `vectors` row-major [ids.size()][dim]. A batch is atomic.
  // Insert fails with ALREADY_EXISTS if any id exists; upsert replaces;
  // delete ignores unknown ids (ack.rows counts the deleted ones).
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
  // Asynchronous forms, for streams and for servers that must not block a
  // thread through an fsync: `done` runs once, on the collection's commit
  // thread once the batch is acknowledged, or on the caller's thread before
  // the call returns when it is refused (keep it short; do not call back into
  // the manager's write methods from it). ids and vectors are copied before
  // the call returns, except that WriteAsync with an `owner` reads the
  // vectors in place until `done` has run (DurableCollection::WriteAsync).
  void WriteAsync(std::string_view name, WriteMode mode,
                  std::span<const uint64_t> ids, std::span<const float> vectors,
                  const WriteOptions& options, WriteCallback done,
                  std::shared_ptr<const void> owner = nullptr);
  void DeleteAsync(std::string_view name, std::span<const uint64_t> ids,
                   const WriteOptions& options, WriteCallback done);

  absl::StatusOr<std::vector<std::optional<std::vector<float>>>> Get(
      std::string_view name, std::span<const uint64_t> ids) const;
  absl::StatusOr<SearchResults> Search(std::string_view name,
                                       std::span<const float> queries,
                                       const SearchParams& params) const;
  // A handle for callers (the batcher) that search one collection often. It
  // stays valid after a drop (searching the dropped collection's last state).
  absl::StatusOr<std::shared_ptr<const Collection>> GetCollection(
      std::string_view name) const;

  // Maintenance on demand (also run in the background).
  absl::Status Checkpoint(std::string_view name);
  absl::StatusOr<int64_t> Compact(std::string_view name);  // blocks rewritten

 private:
  explicit CollectionManager(const ManagerOptions& options);
  absl::StatusOr<std::shared_ptr<DurableCollection>> Find(
      std::string_view name) const;
  DurableCollectionOptions CollectionOptionsFor() const;
  void MaintenanceLoop();
  void Log(std::string_view line) const;

  const ManagerOptions options_;
  Env* const env_;

  mutable std::mutex mu_;
  bool recovering_ ABSL_GUARDED_BY(mu_) = true;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, std::shared_ptr<DurableCollection>>
      collections_ ABSL_GUARDED_BY(mu_);
  // Serialises create and drop (directory renames) without holding mu_.
  std::mutex ddl_mu_;

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;  // signalled when stop_ is set
  bool stop_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread maintenance_;
};

}  // namespace peakknn
