// The service core: what serves the peakknn API, independent of gRPC (TF
// Serving's ServerCore idea). The gRPC handlers (server/) call only this
// interface; each role of the binary brings an implementation:
//
//   standalone  CollectionManager (store/collection_manager.h): durable
//               collections in a local data directory
//   router      the cluster's router (router/, to come): shards and
//               replicas behind the same calls
//   tests       a fake core (tests/fake_core.h) for in-process service tests
//
// A request is served in two steps: the handler opens the collection once
// (OpenCollection), checks the request against its schema (limits, dims,
// finite values: engine/vector_checks.h), then searches, writes or reads
// through the handle. Batching and metrics stay in the server.
//
// Status codes (the proto's contract): NOT_FOUND for a missing collection,
// ALREADY_EXISTS for a duplicate name or inserted id, INVALID_ARGUMENT
// naming the field, UNAVAILABLE while the core cannot serve yet (recovery)
// or any more, RESOURCE_EXHAUSTED / INTERNAL for disk errors (naming the
// file and OS error), DATA_LOSS for corruption found at recovery.
//
// Thread-safety: every method of both classes may be called from any
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/collection.h"
#include "engine/schema.h"
#include "store/durability.h"

namespace peakknn {

struct WriteOptions {
  Durability durability = Durability::kDefault;  // the collection's default
};

// What an acknowledged write did.
struct WriteAck {
  // The batch's position in the collection's log. A delete none of whose
  // ids exists logs nothing: it carries the last logged batch's (0: none).
  uint64_t sequence = 0;
  Durability durability = Durability::kFsync;  // kFsync or kNone, as applied
  int64_t rows = 0;  // rows written, or ids deleted (unknown ids not counted)
  // Cluster mode: per shard, the stream sequence of the batch's part (0
  // where it had none): what a session read must wait for. Empty from a
  // local store (its acknowledged writes are visible at once).
  std::vector<uint64_t> shard_sequences;
};

// How fresh a read must be (the API's Consistency). A local store reads
// its latest state, which satisfies every requirement; a router
// (router/routed_collection.h) waits for the shard replicas it reads from.
struct ReadConsistency {
  bool strong = false;  // every write acknowledged before the read
  // Session: per shard, the stream sequence the read must see (empty:
  // none).
  std::vector<uint64_t> after;

  // Makes this the stricter of both (a batch of reads waits for the
  // strictest of them).
  void Include(const ReadConsistency& other);
};

// Runs exactly once per write: on the thread that acknowledges it (keep it
// short; do not write to the same collection from it), or on the caller's
// thread before the write call returns when the write is refused.
using WriteCallback = std::function<void(absl::StatusOr<WriteAck>)>;

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

// What serves the searches, for GetStats and /metrics.
struct CoreStats {
  std::string backend;                      // "cpu", "cuda", ...
  int64_t backend_device_memory_bytes = 0;  // accelerator memory held
};

// Row counts of a collection's current state (cheap: one snapshot read).
struct RowCounts {
  int64_t rows = 0;
  int64_t live_rows = 0;
  // Shards a search of the collection spans (a router's collections: their
  // shard count), for PlanRecall.
  int shards = 1;
};

// One collection, opened for serving. A handle stays valid after its
// collection is dropped: searches then see the collection's last state and
// writes fail with NOT_FOUND.
class ServedCollection {
 public:
  virtual ~ServedCollection() = default;

  virtual const CollectionSchema& schema() const = 0;

  // Searches queries (row-major [n][dim]) that passed CheckVectors for this
  // schema, as one batch over one snapshot, at least as fresh as
  // `consistency` asks. The results say how many rows were searched.
  virtual absl::StatusOr<SearchResults> Search(
      std::span<const float> queries, const SearchParams& params,
      const ReadConsistency& consistency) const = 0;

  // Asynchronous writes, acknowledged once durable (per the options) and
  // visible to every search that starts after the acknowledgement. A batch
  // is atomic. Insert fails with ALREADY_EXISTS if any id exists; upsert
  // replaces; delete ignores unknown ids (ack.rows counts the deleted).
  // ids and vectors are copied before the call returns, except that with an
  // `owner` the vectors are read in place until `done` has run (the owner
  // keeps them alive and unchanged until then).
  virtual void WriteAsync(WriteMode mode, std::span<const uint64_t> ids,
                          std::span<const float> vectors,
                          const WriteOptions& options, WriteCallback done,
                          std::shared_ptr<const void> owner = nullptr) = 0;
  virtual void DeleteAsync(std::span<const uint64_t> ids,
                           const WriteOptions& options, WriteCallback done) = 0;

  // The stored vector of each id (as Collection::Get), nullopt if unknown.
  virtual absl::StatusOr<std::vector<std::optional<std::vector<float>>>> Get(
      std::span<const uint64_t> ids,
      const ReadConsistency& consistency) const = 0;

  // Shard replicas (router/replica_core.h): waits until this copy has
  // applied its shard's write stream up to `stream_sequence`, at most until
  // `deadline` (DEADLINE_EXCEEDED saying how far it got). Every other
  // collection refuses a non-zero sequence with INVALID_ARGUMENT: only a
  // replica has a stream.
  virtual absl::Status AwaitApplied(uint64_t stream_sequence,
                                    absl::Time deadline) const;

  virtual RowCounts row_counts() const = 0;
};

class ServiceCore {
 public:
  virtual ~ServiceCore() = default;

  // OK while the core serves; UNAVAILABLE saying why otherwise (e.g. the
  // store is still recovering its collections).
  virtual absl::Status Ready() const = 0;

  // schema.name must pass ValidateSchema. kDefault durability takes the
  // core's default.
  virtual absl::Status CreateCollection(const CollectionSchema& schema,
                                        Durability durability) = 0;
  // Deletes the collection and its data. Searches already running on it
  // finish on their snapshot.
  virtual absl::Status DropCollection(std::string_view name) = 0;
  // Every collection, sorted by name.
  virtual absl::StatusOr<std::vector<CollectionInfo>> ListCollections()
      const = 0;
  virtual absl::StatusOr<CollectionInfo> DescribeCollection(
      std::string_view name) const = 0;

  virtual absl::StatusOr<std::shared_ptr<ServedCollection>> OpenCollection(
      std::string_view name) const = 0;

  virtual CoreStats Stats() const = 0;
};

}  // namespace peakknn
