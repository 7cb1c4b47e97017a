// An in-memory collection of uint64-keyed vectors, searchable while written.
//
// Storage: rows live in append-only RowBlocks (engine/row_block.h) in panel
// layout; slot = block.slot_base + row. Blocks are sized to the data: a new
// block holds the rows being appended or an eighth of the rows the blocks
// already hold, whichever is more (at least 64 KiB, at most
// CollectionOptions::block_rows), so capacity grows geometrically and
// unused capacity stays under about an eighth of the rows held. Block
// memory is allocated and resident whole, and CollectionStats counts it.
// Deletes and upserts set tombstone bits; tombstoned rows score -inf inside
// the kernel, so they never take a bin and recall holds.
//
// Concurrency: one writer at a time (writes serialise on a mutex); any number
// of searches run concurrently with it. A search takes a Snapshot: an
// immutable view (blocks, row counts, tombstone bitmaps) published by the last
// completed write. Writers never modify anything a published snapshot can
// see: rows are appended past the published count, and tombstone bitmaps are
// copied on write. Searches never wait for writers, nor writers for searches.
//
// Every write is atomic: it is checked whole before anything changes. The
// checks that depend only on the schema (engine/vector_checks.h) run once,
// before the writer lock; under the lock only the id-existence check of an
// insert remains.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/thread_pool.h"
#include "engine/backend.h"
#include "engine/schema.h"
#include "engine/snapshot.h"

namespace peakknn {

struct CollectionOptions {
  // Most rows per storage block; a multiple of 16. Large blocks amortise
  // per-block work; small ones suit tests.
  int64_t block_rows = 65536;
  ThreadPool* pool = nullptr;  // nullptr: ThreadPool::Default()
  // Where searches run; not owned, must outlive the collection. nullptr: a
  // CpuBackend over `pool` owned by the collection.
  SearchBackend* backend = nullptr;
};

struct SearchParams {
  int64_t k = 10;
  // 0: the collection's default; 1: exact search.
  double recall_target = 0;
  // > 0: scan with this many bins (rounded up to a multiple of 16; exact
  // when that reaches the live rows) instead of planning from
  // recall_target: a shard's share of a cluster plan
  // (router/sharded_search.h). The results report the recall of the bins
  // used over this collection's rows.
  int64_t bins = 0;
};

// Results of a batch, query-major: query q's results are
// ids[q*k .. q*k + counts[q]), best first. counts[q] < k only when fewer than
// k live rows exist, or when SearchParams::bins asked for fewer than k bins
// (a shard's share; the router merges the shards' candidates).
struct SearchResults {
  // The snapshot searched: slots scanned (tombstoned ones included) and the
  // live rows among them (the n of the recall estimate).
  int64_t rows_scanned = 0;
  int64_t live_rows = 0;
  int64_t num_queries = 0;
  int64_t k = 0;
  std::vector<uint64_t> ids;
  std::vector<float> distances;  // metric's own terms; see kernels/score.h
  std::vector<int32_t> counts;
  bool exact = false;
  int64_t bins = 0;              // L used (live rows when exact)
  double expected_recall = 1.0;  // from the recall calculator
  double worst_rank_recall = 1.0;
};

struct CollectionStats {
  int64_t rows = 0;       // slots used, tombstoned ones included
  int64_t live_rows = 0;  // rows a search can return
  // Memory allocated: every block's mapping (RowBlock::allocated_bytes:
  // rows, bf16 blocks' f32 copies, bias, ids), tombstone bitmaps and the
  // id map's table. For f32 rows about dim * 4 + 12 bytes a row plus the
  // id map (17 bytes a bucket, 1-2 buckets a row) plus unused capacity;
  // bf16 rows take dim * 6 + 12.
  int64_t memory_bytes = 0;
};

enum class WriteMode {
  kInsert,  // every id must be new (to the collection and within the batch)
  kUpsert,  // a known id's old row is tombstoned and replaced
};

class Collection {
 public:
  static absl::StatusOr<std::unique_ptr<Collection>> Create(
      const CollectionSchema& schema, const CollectionOptions& options = {});

  const CollectionSchema& schema() const { return schema_; }

  // Checks the batch (CheckWriteBatch, then for kInsert that no id exists),
  // applies it whole and publishes it to searches. `vectors` is row-major
  // [ids.size()][dim].
  absl::Status Write(WriteMode mode, std::span<const uint64_t> ids,
                     std::span<const float> vectors);
  // The first of `ids` that the collection holds, if any. Reads the id map
  // only, under its own lock: it does not wait for a write's rows to be
  // packed, and may see a write in progress in part (id by id). A durable
  // collection asks it at admission, where no write can apply in between
  // that its overlay of unapplied batches does not answer for
  // (store/durable_collection.h).
  std::optional<uint64_t> FirstPresent(std::span<const uint64_t> ids) const;
  // Applies a batch that already passed CheckWriteBatch (and, for an insert,
  // FirstPresent against the state it applies to): rows of ids the
  // collection holds replace the old ones (their slots are tombstoned), the
  // rest are appended; then publishes. Never fails: the durable layer logs a
  // batch before applying it, so the apply must not be able to refuse.
  void Apply(std::span<const uint64_t> ids, std::span<const float> vectors);
  // Tombstones the ids that exist; returns how many did. Unknown ids are not
  // an error (deletes are idempotent).
  int64_t Delete(std::span<const uint64_t> ids);
  // The stored vector of each id, or nullopt for unknown ids: the f32 values
  // as written (bf16 collections keep them for rescoring); COSINE the
  // normalised vector. The writer lock is held only to look the slots up;
  // the copies are made from the published snapshot.
  std::vector<std::optional<std::vector<float>>> Get(
      std::span<const uint64_t> ids) const;

  // CheckVectors for queries: whole vectors of dim, finite, non-zero under
  // COSINE.
  absl::Status CheckQueries(std::span<const float> queries) const;
  // Checks the queries, then searches them (SearchChecked). Row-major
  // [num_queries][dim].
  absl::StatusOr<SearchResults> Search(std::span<const float> queries,
                                       const SearchParams& params) const;
  // Searches queries that already passed CheckQueries: the server checks
  // each request's queries once, then searches many requests as one batch.
  // One snapshot is taken; the results say how many rows it held. Checks k
  // and the recall target (cheap, per batch).
  absl::StatusOr<SearchResults> SearchChecked(std::span<const float> queries,
                                              const SearchParams& params) const;

  // The current published state; cheap (one shared_ptr copy).
  std::shared_ptr<const Snapshot> snapshot() const;

  CollectionStats Stats() const;

  // The ids of `ids` that the collection holds, in their order (duplicates
  // kept). Reads the id map only, under its own lock, like FirstPresent
  // (and seeing a write in progress in part, like it); a durable collection
  // logs a delete's existing ids only.
  std::vector<uint64_t> PresentIds(std::span<const uint64_t> ids) const;

 private:
  // Restore and compaction (engine/collection_maintenance.h) edit the
  // writer's state directly, under write_mu_ (and id_mu_ for the id map).
  friend class CollectionMaintenance;

  Collection(const CollectionSchema& schema, const CollectionOptions& options);

  // options.pool or the default pool: rescoring, and faulting in blocks.
  ThreadPool& pool() const;

  void ApplyLocked(std::span<const uint64_t> ids,
                   std::span<const float> vectors)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Appends rows (row-major [ids.size()][dim], stored values: normalised
  // for COSINE) to the tail block, allocating blocks as it fills, and
  // records their slots; a known id's old row is tombstoned. The rows stay
  // invisible until Publish.
  void AppendRows(std::span<const uint64_t> ids, const float* vectors)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Adds an empty tail block sized for `wanted` more rows (see Storage).
  void AddBlock(int64_t wanted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  void TombstoneSlot(int64_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  void Publish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  const CollectionSchema schema_;
  const CollectionOptions options_;
  // The CPU backend when options.backend is nullptr.
  const std::unique_ptr<SearchBackend> own_backend_;
  SearchBackend* const backend_;

  mutable std::mutex write_mu_;
  // The writer's working copy of the state, published by copy.
  std::shared_ptr<Snapshot> pending_ ABSL_GUARDED_BY(write_mu_);
  // The id map has its own lock, taken inside write_mu_ around each id-map
  // update, so FirstPresent and Stats never wait behind a write's packing
  // and block allocation.
  mutable std::mutex id_mu_ ABSL_ACQUIRED_AFTER(write_mu_);
  IdMap id_to_slot_ ABSL_GUARDED_BY(id_mu_);
  // Slot of row 0 of the next block allocated.
  int64_t next_slot_base_ ABSL_GUARDED_BY(write_mu_) = 0;
  // Rows announced to be appended (CollectionMaintenance::ReserveRows) and
  // not yet appended: new blocks are sized to hold them.
  int64_t expected_rows_ ABSL_GUARDED_BY(write_mu_) = 0;
  // Per block of pending_: the tombstone bitmap this write already copied
  // (and may modify), or nullptr while it is still shared with published_.
  std::vector<TombstoneBitmap*> private_bitmaps_ ABSL_GUARDED_BY(write_mu_);

  mutable std::mutex publish_mu_;
  std::shared_ptr<const Snapshot> published_ ABSL_GUARDED_BY(publish_mu_);
};

}  // namespace peakknn
