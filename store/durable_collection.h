// A Collection made durable: its directory (store/data_dir.h) holds a
// checkpoint and a write-ahead log, and every write is logged before it is
// applied.
//
// Write path (one collection):
//   caller, no lock held: the stateless checks of the batch (sizes, finite
//           values, non-zero under COSINE, no id twice: CheckWriteBatch),
//           in parallel across writers; the vectors are copied unless an
//           owner keeps them alive.
//   caller, under mu_ (admission): an insert's ids are checked against the
//           collection (Collection::FirstPresent: the id map, no vectors
//           copied) plus an overlay of logged-but-unapplied batches; a
//           delete keeps only its ids that exist by the same measure, once
//           each. Then the next sequence number and the framed record
//           appended to an in-memory group buffer. So sequence order = log
//           order = apply order, and a logged batch always applies.
//   commit thread: takes the whole group buffer, writes it with one
//           append, fsyncs once if any batch in the group asked for fsync
//           (WalWriter, store/wal_writer.h), applies the batches to the
//           Collection in sequence order (which publishes them to
//           searches), then calls each batch's callback.
// So an ack means: logged (and fsynced unless durability none) and visible.
//
// Idle collections hold no thread and no file descriptor: the commit
// thread is started by the first write after an idle spell and ends once
// it has had no write for options.idle_timeout, after closing the log's
// active segment (WalWriter::Release, which fsyncs what is unsynced
// first). Threads that start on demand rather than a pool shared by every
// collection: each collection keeps its own commit order with the same
// simple loop, and a busy collection never waits behind another's fsync.
// (base/on_demand_thread.h has the start/exit protocol.) A writing
// collection holds one thread and up to kMaxWalFds descriptors.
//
// A delete none of whose ids exists logs nothing and takes no sequence
// number: it is acknowledged in order behind the batches logged before it,
// with rows 0 and the sequence of the last of them (0 if there is none),
// once that one is durable (per the delete's durability) and visible.
//
// A failed append or fsync fails its group and every batch queued behind it
// (they were validated assuming the group would apply); none of them is
// acknowledged. After a failed write the segment is truncated back to the
// last good record and writes go on. After a failed fsync (of a group, or
// of unsynced records before a rotation or an idle release), or a
// roll-back that failed, the log is broken: further writes fail with
// UNAVAILABLE naming the original error until a restart recovers from
// disk; reads and checkpoints keep working. An fsync is never retried
// ("fsyncgate", store/wal_writer.h): the batches it covered may or may not
// be there after the restart, each whole. A log segment that cannot be
// created only delays rotation (store/wal_writer.h).
//
// Checkpoint: rotate the log (if that fails, the checkpoint goes ahead and
// a later one retires the segment), take (applied sequence, snapshot)
// atomically, write the snapshot's live rows, install, then delete the log
// segments whose records are all covered. Writers and searches continue
// meanwhile.
//
// Open recovers the directory first (store/recovery.h: checkpoint, log
// replay, the torn-tail and corruption policy).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/on_demand_thread.h"
#include "engine/collection.h"
#include "store/durability.h"
#include "store/env.h"
#include "store/manifest.h"
#include "store/recovery.h"
#include "store/service_core.h"
#include "store/store_log.h"
#include "store/wal_format.h"
#include "store/wal_writer.h"

namespace peakknn {

struct DurableCollectionOptions {
  Env* env = nullptr;  // nullptr: Env::Default()
  CollectionOptions collection;
  // A log segment is closed and a new one started past this size.
  int64_t wal_segment_bytes = int64_t{64} << 20;
  // Recovery: cut the log at a corrupt record instead of failing.
  bool truncate_corrupt_wal = false;
  // After this long without a write the commit thread ends and the log's
  // active segment is synced and closed; the next write starts both again.
  absl::Duration idle_timeout = absl::Seconds(5);
  // Where recovery and maintenance report what they did (one line each).
  // Empty: standard error.
  LogFunction log;
  // Timing observers for metrics (optional, may be called from any of the
  // collection's threads, must be cheap and must not call back into it):
  // each log fsync of a write group, and each checkpoint that wrote files
  // (snapshot capture to installed manifest).
  std::function<void(absl::Duration)> on_wal_fsync;
  std::function<void(absl::Duration)> on_checkpoint;
};

class DurableCollection {
 public:
  // Creates the collection's directory `dir` (which must not exist)
  // atomically: a temporary directory with its MANIFEST renamed into place.
  // A create that fails after the rename removes the directory again, so a
  // retry (or a restart) does not find a collection that was never
  // reported created.
  static absl::StatusOr<std::unique_ptr<DurableCollection>> Create(
      const std::string& dir, const CollectionSchema& schema,
      Durability default_durability, const DurableCollectionOptions& options);
  // Recovers the collection in `dir` (store/recovery.h).
  static absl::StatusOr<std::unique_ptr<DurableCollection>> Open(
      const std::string& dir, const DurableCollectionOptions& options);

  // Waits for the queued writes to finish (and the commit thread to end).
  // Takes no checkpoint: call Close(true) for a clean shutdown.
  ~DurableCollection();
  DurableCollection(const DurableCollection&) = delete;
  DurableCollection& operator=(const DurableCollection&) = delete;

  // Asynchronous writes: `done` runs exactly once, on the commit thread (keep
  // it short) or, for a batch rejected by validation, on the caller's thread
  // before the call returns. Starts the commit thread if it is not running.
  // `vectors` is row-major [ids.size()][dim]. Without `owner` both spans are
  // copied before the call returns. With `owner`, the vectors are not copied:
  // the store reads them in place until `done` has run, holding `owner` (which
  // must keep that memory alive and unchanged) until then. Servers pass the
  // parsed request, saving a copy of every row on the admission path.
  void WriteAsync(WriteMode mode, std::span<const uint64_t> ids,
                  std::span<const float> vectors, Durability durability,
                  WriteCallback done,
                  std::shared_ptr<const void> owner = nullptr);
  // Logs and deletes the ids that exist; see above for a delete of none.
  void DeleteAsync(std::span<const uint64_t> ids, Durability durability,
                   WriteCallback done);
  // Blocking forms: return when the batch is acknowledged or failed.
  absl::StatusOr<WriteAck> Write(WriteMode mode, std::span<const uint64_t> ids,
                                 std::span<const float> vectors,
                                 Durability durability = Durability::kDefault);
  absl::StatusOr<WriteAck> Delete(std::span<const uint64_t> ids,
                                  Durability durability = Durability::kDefault);

  // Reads go straight to the in-memory collection.
  const Collection& collection() const { return *collection_; }

  // Takes a checkpoint unless nothing was applied since the last one.
  absl::Status Checkpoint();
  // True when the log holds >= wal_bytes since the last checkpoint, or any
  // log bytes and the last checkpoint is older than max_age.
  bool CheckpointDue(int64_t wal_bytes, absl::Duration max_age) const;
  // Compacts blocks at least min_dead_fraction dead; returns how many.
  int64_t Compact(double min_dead_fraction);

  // Drains queued writes, waits for the commit thread to end and, when
  // checkpoint is true, takes a final checkpoint. Writes after Close fail.
  absl::Status Close(bool checkpoint);
  // Close(false) for a collection being dropped: writes after it fail with
  // NOT_FOUND rather than FAILED_PRECONDITION.
  void CloseForDrop();

  const CollectionSchema& schema() const { return collection_->schema(); }
  const std::string& dir() const { return dir_; }
  Durability default_durability() const { return default_durability_; }
  // Highest sequence applied (visible), and highest on stable storage
  // (fsynced in the log, or in a checkpoint).
  uint64_t applied_sequence() const;
  uint64_t durable_sequence() const;
  // Bytes of the current checkpoint plus live log segments.
  int64_t disk_bytes() const;
  const RecoveryReport& recovery_report() const { return recovery_; }

 private:
  struct Op {
    // The batch's sequence; for a delete that logs nothing, the last
    // logged batch's.
    uint64_t sequence = 0;
    WalRecordType type = WalRecordType::kWrite;
    WriteMode mode = WriteMode::kInsert;
    bool sync = true;
    bool logged = true;  // false: a delete of no existing id
    std::vector<uint64_t> ids;
    // kWrite: the rows, [ids.size()][dim]: either in `owner`'s memory or in
    // vectors_copy (a moved vector keeps its buffer, so moving an Op keeps
    // the span valid).
    std::span<const float> vectors;
    std::shared_ptr<const void> owner;
    std::vector<float> vectors_copy;
    WriteCallback done;
  };
  // An id's state after the logged-but-unapplied batches that touched it.
  struct OverlayEntry {
    bool present = false;
    uint64_t sequence = 0;  // last batch that touched it
  };

  DurableCollection(std::string dir, const DurableCollectionOptions& options,
                    RecoveredCollection recovered,
                    std::unique_ptr<WalWriter> wal);

  Durability Resolve(Durability requested) const;
  // Admission: checks the batch against the state it will apply to, then
  // logs it into the group buffer.
  void Submit(Op op);
  absl::Status CheckInsertIds(std::span<const uint64_t> ids) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The ids of `ids` present once the batches logged so far apply, once
  // each.
  std::vector<uint64_t> ExistingIds(std::span<const uint64_t> ids) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The commit thread's body (committer_): runs until closing and drained,
  // or until idle for options_.idle_timeout.
  void CommitLoop();
  // Gives back the log's file while idle; a failure is logged (the file
  // then stays open until the next idle spell tries again).
  void ReleaseLog();
  // Copies a broken log's error (WalWriter::broken()) to broken_, so that
  // admission refuses further writes.
  void NoteBrokenLog();
  // After a failed group append: fails `ops` and everything queued behind
  // them, and restarts admission from the applied state.
  void FailGroup(std::deque<Op>& ops, const absl::Status& written);
  WriteAck Apply(const Op& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(apply_mu_);

  const std::string dir_;
  const DurableCollectionOptions options_;
  const LogFunction log_;
  Env* const env_;
  const std::unique_ptr<Collection> collection_;
  const Durability default_durability_;
  const RecoveryReport recovery_;
  // The log files; thread-safe on its own.
  const std::unique_ptr<WalWriter> wal_;

  // Admission: sequence numbers, the group buffer, the overlay.
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // the committer waits for queue_/closing_
  // The commit thread: running while queue_ is non-empty (Submit starts it
  // under mu_), joined by Close. Start/Exiting/running under mu_.
  OnDemandThread committer_;
  uint64_t last_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::string group_ ABSL_GUARDED_BY(mu_);
  // The group being written, the commit thread's own. It and group_ swap
  // each cycle and keep their capacity, so a steady stream of groups
  // encodes into memory already faulted in rather than fresh pages (up to
  // kMaxKeptGroupBytes).
  std::string writing_;
  static constexpr size_t kMaxKeptGroupBytes = size_t{64} << 20;
  std::deque<Op> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, OverlayEntry> overlay_ ABSL_GUARDED_BY(mu_);
  // The error that broke the log (WalWriter::broken()), copied here so
  // admission can refuse without waiting for the log's lock.
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool dropped_ ABSL_GUARDED_BY(mu_) = false;  // closing_ by CloseForDrop

  // Applying to the collection; held while a checkpoint captures its state.
  mutable std::mutex apply_mu_;
  uint64_t applied_sequence_ ABSL_GUARDED_BY(apply_mu_) = 0;

  // Checkpoints, one at a time.
  mutable std::mutex ckpt_mu_;
  CheckpointManifest manifest_ ABSL_GUARDED_BY(ckpt_mu_);
  absl::Time last_checkpoint_ ABSL_GUARDED_BY(ckpt_mu_);
};

}  // namespace peakknn
