// Recovering one collection directory at start-up: read the MANIFEST, load
// the checkpoint it names into a new Collection, then replay every later
// WAL record in sequence order.
//
// Policy:
// - Segments are replayed in file-number order. Records at or below the
//   checkpoint's sequence are skipped (a checkpoint can cover part of a
//   segment); every other record's sequence must be above the previous
//   one's.
// - A torn tail on the last segment (a crash in the middle of an append:
//   nothing there was acknowledged, acks follow the write) is cut off and
//   logged.
// - Anything else bad (a torn record in an earlier segment, a corrupt
//   record, one that does not decode or does not apply, a sequence out of
//   order) fails with DATA_LOSS naming the file, offset and sequence.
//   With truncate_corrupt_wal the log is cut there instead: the segment is
//   truncated, the later ones deleted (their records follow the cut), and
//   it is logged loudly.
// - A MANIFEST or checkpoint data file of a format version this build does
//   not read fails with FAILED_PRECONDITION before anything is changed.
// - A cut is fsynced before anything else is written. Deleted segments
//   (later ones after a cut, empty ones) stay deleted through a power loss
//   once the writer fsyncs the directory as it starts its first segment
//   (WalWriter::Open).
// - Empty segments are deleted, so restarts do not pile them up; so are
//   stale checkpoint data files and temporary files (best effort, logged).
//
// Cost: reads the checkpoint and every log segment once; the segments one
// at a time, each whole in memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/collection.h"
#include "store/env.h"
#include "store/manifest.h"
#include "store/store_log.h"
#include "store/wal_writer.h"

namespace peakknn {

// What recovery found, for logs and tests.
struct RecoveryReport {
  uint64_t checkpoint_sequence = 0;
  int64_t checkpoint_rows = 0;
  int64_t replayed_records = 0;
  int64_t truncated_bytes = 0;  // torn tail or (when asked) corruption cut
  absl::Duration elapsed;
};

struct RecoveryOptions {
  // Cut the log at a corrupt record instead of failing.
  bool truncate_corrupt_wal = false;
  LogFunction log;  // required
};

// A recovered collection and the state of its log, for the WalWriter.
struct RecoveredCollection {
  CheckpointManifest manifest;
  std::unique_ptr<Collection> collection;
  // The segments kept: complete, each holding records, oldest first.
  std::vector<WalSegment> segments;
  // The number for the next segment: above every segment seen, deleted
  // ones included.
  uint64_t next_segment = 1;
  // The highest sequence recovered (checkpoint or log); all of it was read
  // back from the files.
  uint64_t last_sequence = 0;
  RecoveryReport report;
};

absl::StatusOr<RecoveredCollection> RecoverCollection(
    Env* env, const std::string& dir, const CollectionOptions& collection,
    const RecoveryOptions& options);

}  // namespace peakknn
