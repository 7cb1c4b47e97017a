// The write side of one collection's log: its segment files (record format
// store/wal_format.h, names store/data_dir.h), the active one last.
//
// Append writes a group of records to the active segment with one write
// and, when asked, one fdatasync. A failed write is cut off again
// (truncate to the group's start, then fsync) so that no record follows a
// failed one and a restart never replays a batch reported failed. If even
// that fails the writer is broken: the segment's tail is unknown, and every
// later append fails with that error until a restart recovers from the
// files.
//
// A failed fsync (of a group, or before rotation, Release or Close) breaks
// the writer at once, with no roll-back and no second fsync ("fsyncgate"):
// Linux may have dropped the unsynced pages and marks them clean, so a
// retried fsync succeeds without writing them, and records appended after
// it would sit behind a hole. The records that fsync covered (the failed
// group, and earlier groups appended without sync) were never reported
// durable; after a restart each is there, whole, or not, as after a crash.
// The durable sequence stays where the last good fsync left it.
//
// Rotation starts the next segment: after an append leaves the active one
// at options.segment_bytes or more, and before a checkpoint (so that the
// segments before it can be retired). It fsyncs the active segment, creates
// the next one and fsyncs the directory, and only then lets go of the old
// one. So when the next segment cannot be created (EMFILE, out of inodes,
// EIO) appends simply continue on the old one, and the next append past the
// size, or the next checkpoint, tries again. Failures are logged at most
// once a minute, since an ongoing fault fails every try. (An empty segment
// left by a failed try is harmless: recovery deletes empty segments.)
//
// File descriptors: the active segment is open only while the collection
// writes. Open creates it and closes it again; Append (re)opens it at its
// end, whose size the writer knows; Release, which the collection calls
// once it has been idle for a while, fsyncs what is unsynced and closes it.
// So an idle writer holds no file descriptor, a writing one holds one, and
// one more while rotation creates the next segment and fsyncs the
// directory (kMaxWalFds). Released, nothing is unsynced: every durability
// guarantee is the same as if the file had stayed open.
//
// The durable sequence is the highest sequence on stable storage: fsynced
// in a segment, or covered by an installed checkpoint.
//
// Thread-safety: every method is thread-safe. Append, Rotate, Release,
// RetireSegments and Close hold the writer's lock through their I/O (an
// fsync included); durable_sequence() and bytes() never wait for it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/env.h"
#include "store/store_log.h"

namespace peakknn {

// The most file descriptors one WalWriter holds at once: the active
// segment, and during rotation the next one plus the directory being
// fsynced. (Rotation runs under the writer's lock, so at most one at a
// time per writer.)
inline constexpr int kMaxWalFds = 3;

struct WalSegment {
  uint64_t number = 0;
  uint64_t max_sequence = 0;  // highest sequence in it; 0: no records
  int64_t bytes = 0;          // of whole records
};

struct WalWriterOptions {
  // Rotate once the active segment holds this many bytes.
  int64_t segment_bytes = int64_t{64} << 20;
  LogFunction log;  // required
  // Called with the duration of each fsync of a group (optional, cheap).
  std::function<void(absl::Duration)> on_fsync;
};

class WalWriter {
 public:
  // Takes over `segments`, the complete segments recovery kept (oldest
  // first, each holding records), and starts segment `next_number` (above
  // theirs) as the active one: creates it and fsyncs the directory, but
  // leaves it closed until the first Append. Everything up to
  // `durable_sequence` is on stable storage.
  static absl::StatusOr<std::unique_ptr<WalWriter>> Open(
      Env* env, std::string dir, std::vector<WalSegment> segments,
      uint64_t next_number, uint64_t durable_sequence,
      WalWriterOptions options);

  // Syncs (if anything is unsynced) and closes the active segment.
  ~WalWriter();
  WalWriter(const WalWriter&) = delete;
  WalWriter& operator=(const WalWriter&) = delete;

  // Appends `records`, framed records whose highest sequence is
  // `last_sequence`, and with `sync` fdatasyncs the segment. Empty
  // `records` with `sync` only fsyncs what earlier appends left unsynced.
  // Opens the active segment first if it is released; a failure to do so
  // fails the append and changes nothing. On a failed write the segment is
  // rolled back, on a failed fsync the writer breaks (see above); either
  // way the error is returned, and broken() then says whether the writer
  // takes further appends.
  absl::Status Append(std::string_view records, uint64_t last_sequence,
                      bool sync);
  // OK, or the error that broke the writer.
  absl::Status broken() const;

  // Starts the next segment unless the active one is empty. On failure the
  // active segment stays active, and the failure is logged (throttled) as
  // well as returned: a caller may go on without a new segment. A released
  // writer stays released: the new segment is created and closed again.
  absl::Status Rotate();

  // Syncs (if anything is unsynced and the writer is not broken) and
  // closes the active segment's file, keeping it active: the next Append
  // reopens it. A no-op when it is already closed. If the fsync fails the
  // writer is broken (above), the file stays open and the error is
  // returned; the next Release closes it without syncing.
  absl::Status Release();

  // A checkpoint covering every sequence <= checkpoint_sequence is
  // installed: deletes the segments (never the active one) whose records
  // it covers, and raises the durable sequence to it. Returns the first
  // deletion error; a segment it could not delete is forgotten here and
  // found (and retired) again by the next recovery.
  absl::Status RetireSegments(uint64_t checkpoint_sequence);

  // Syncs (if anything is unsynced and the writer is not broken) and
  // closes the active segment for good.
  // Later appends and rotations fail with FAILED_PRECONDITION.
  absl::Status Close();
  bool closed() const;

  uint64_t durable_sequence() const { return durable_sequence_.load(); }
  // Bytes of every live segment, the active one included.
  int64_t bytes() const { return bytes_.load(); }

 private:
  WalWriter(Env* env, std::string dir, std::vector<WalSegment> segments,
            uint64_t durable_sequence, WalWriterOptions options);

  // Creates segment `number` and fsyncs the directory.
  absl::StatusOr<std::unique_ptr<WritableFile>> CreateSegment(uint64_t number);
  // Opens the released active segment at its end.
  absl::Status ReopenActiveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes a segment file with nothing unsynced in it; a failure loses
  // nothing and is only logged.
  void CloseSynced(WritableFile& file);
  absl::Status RotateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SyncActiveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a failed fsync: breaks the writer (see above); returns `failed`.
  absl::Status BreakOnFailedSync(const absl::Status& failed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ClosedError() const;
  void RaiseDurable(uint64_t sequence);

  Env* const env_;
  const std::string dir_;
  const WalWriterOptions options_;
  // Rotation failures: one line a minute.
  LogThrottle rotation_errors_;

  mutable std::mutex mu_;
  // The active segment's file; null while released or once closed.
  std::unique_ptr<WritableFile> active_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Records appended to the active segment since its last fsync; always
  // false while active_ is null.
  bool active_unsynced_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<WalSegment> segments_ ABSL_GUARDED_BY(mu_);  // active last
  absl::Status broken_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> durable_sequence_;
  std::atomic<int64_t> bytes_{0};
};

}  // namespace peakknn
