// The server's one door into the engine: named collections and the
// operations the RPCs need, by collection name.
//
// This implementation keeps every collection in memory (peakknn::Collection)
// and numbers writes per collection; it does not persist anything. It is
// the only server file that touches engine collections, so switching to the
// durable CollectionManager (WAL + checkpoints, engine/) replaces this pair
// of files and nothing else.
//
// Thread-safe: any method may be called from any thread. Writes to one
// collection are serialised (so sequence numbers follow apply order);
// searches never wait for writes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "engine/collection.h"
#include "engine/schema.h"
#include "engine/thread_pool.h"

namespace peakknn::server {

struct CollectionInfo {
  CollectionSchema schema;
  CollectionStats stats;
  uint64_t last_sequence = 0;  // 0: no write yet
};

struct WriteResult {
  uint64_t sequence = 0;  // this write's sequence number in its collection
  int64_t rows = 0;       // rows written, or (Delete) rows that existed
  CollectionStats stats;  // the collection after the write
};

// One engine batch and the collection size it ran over.
struct SearchOutcome {
  SearchResults results;
  int64_t rows_scanned = 0;  // slots in the snapshot searched
  int64_t live_rows = 0;
};

class CollectionRegistry {
 public:
  struct Options {
    std::string data_dir;  // unused by this in-memory implementation
    int64_t block_rows = 65536;
    ThreadPool* pool = nullptr;  // nullptr: ThreadPool::Default()
  };

  // Opens the registry; a durable one recovers here (the server reports
  // NOT_SERVING until this returns).
  static absl::StatusOr<std::unique_ptr<CollectionRegistry>> Open(
      const Options& options);

  // Whether writes survive a restart (false for this implementation).
  bool durable() const { return false; }

  // ALREADY_EXISTS when the name is taken; INVALID_ARGUMENT for a bad schema.
  absl::StatusOr<CollectionInfo> Create(const CollectionSchema& schema);
  absl::Status Drop(absl::string_view name);
  std::vector<CollectionInfo> List() const;  // sorted by name
  absl::StatusOr<CollectionInfo> Describe(absl::string_view name) const;
  absl::StatusOr<CollectionSchema> Schema(absl::string_view name) const;

  // `vectors` is row-major [ids.size()][dim].
  absl::StatusOr<WriteResult> Write(absl::string_view name, WriteMode mode,
                                    std::span<const uint64_t> ids,
                                    std::span<const float> vectors);
  absl::StatusOr<WriteResult> Delete(absl::string_view name,
                                     std::span<const uint64_t> ids);
  absl::StatusOr<std::vector<std::optional<std::vector<float>>>> Get(
      absl::string_view name, std::span<const uint64_t> ids) const;
  absl::StatusOr<SearchOutcome> Search(absl::string_view name,
                                       std::span<const float> queries,
                                       const SearchParams& params) const;

  // Makes every collection durable up to its last write. This in-memory
  // implementation has nothing to write and says so (UNIMPLEMENTED).
  absl::Status Checkpoint();

 private:
  struct Entry {
    std::unique_ptr<Collection> collection;
    absl::Mutex write_mu;  // orders writes and their sequence numbers
    uint64_t last_sequence ABSL_GUARDED_BY(write_mu) = 0;
  };

  explicit CollectionRegistry(const Options& options) : options_(options) {}
  absl::StatusOr<std::shared_ptr<Entry>> Find(absl::string_view name) const;
  static CollectionInfo InfoOf(Entry& entry);

  const Options options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Entry>> entries_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace peakknn::server
