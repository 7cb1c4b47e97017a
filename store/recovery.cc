#include "store/recovery.h"

#include <algorithm>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "engine/collection_maintenance.h"
#include "store/checkpoint.h"
#include "store/data_dir.h"
#include "store/wal_reader.h"

namespace peakknn {
namespace {

// Cuts a segment to `size` bytes and fsyncs it. The cut must be on disk
// before the writer starts a segment after this one: a cut that a power
// loss undoes would bring the torn tail back in a segment that is no longer
// the last, which the next recovery refuses as corruption.
absl::Status CutSegment(Env* env, const std::string& path, uint64_t size) {
  auto file = env->NewAppendableFile(path);
  if (!file.ok()) return file.status();
  absl::Status s = (*file)->Truncate(size);
  if (s.ok()) s = (*file)->Sync();
  s.Update((*file)->Close());
  return s;
}

// One recovery of one directory; see RecoverCollection.
class Recovery {
 public:
  Recovery(Env* env, const std::string& dir, const RecoveryOptions& options,
           RecoveredCollection& out)
      : env_(env), dir_(dir), options_(options), out_(out) {}

  absl::Status LoadCheckpoint();
  // Replays every segment, applying the policy of recovery.h.
  absl::Status ReplayLog();

 private:
  absl::StatusOr<std::vector<WalSegment>> FindSegments();
  // Replays one segment, filling in its max_sequence and bytes; `last`: it
  // is the newest. A torn or corrupt end that truncate_corrupt_wal cut
  // returns DATA_LOSS (the later segments must go).
  absl::Status ReplaySegment(WalSegment& segment, bool last);
  absl::Status ApplyRecord(const std::string& path, const WalRecord& record,
                           WalSegment& segment);
  // Deletes the segments after a cut, counting their bytes as truncated.
  absl::Status DeleteSegmentsAfterCut(std::span<const WalSegment> segments);

  Env* const env_;
  const std::string& dir_;
  const RecoveryOptions& options_;
  RecoveredCollection& out_;
};

absl::Status Recovery::LoadCheckpoint() {
  const CheckpointManifest& manifest = out_.manifest;
  Collection& collection = *out_.collection;
  // The row count is known: one id-map allocation, blocks that fit it.
  // Reserved at the first chunk, once ReadCheckpointRows has checked the
  // count against the data file: a count only the MANIFEST states could
  // ask for any amount of memory.
  bool reserved = false;
  absl::Status s = ReadCheckpointRows(
      env_, dir_, manifest,
      [&](std::span<const uint64_t> ids, std::span<const float> vectors) {
        if (!reserved) {
          CollectionMaintenance::ReserveRows(collection, manifest.rows);
          reserved = true;
        }
        return CollectionMaintenance::RestoreRows(collection, ids, vectors);
      });
  if (!s.ok()) return s;
  out_.report.checkpoint_sequence = manifest.sequence;
  out_.report.checkpoint_rows = manifest.rows;
  out_.last_sequence = manifest.sequence;
  if (absl::Status stale = DeleteStaleCheckpointFiles(env_, dir_, manifest);
      !stale.ok()) {
    options_.log(absl::StrCat("could not delete stale checkpoint files: ",
                              stale.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<WalSegment>> Recovery::FindSegments() {
  auto names = env_->GetChildren(dir_);
  if (!names.ok()) return names.status();
  std::vector<WalSegment> segments;
  for (const std::string& name : *names) {
    if (auto number = ParseWalSegmentName(name)) {
      segments.push_back(WalSegment{*number, 0, 0});
    }
  }
  std::sort(segments.begin(), segments.end(),
            [](const WalSegment& a, const WalSegment& b) {
              return a.number < b.number;
            });
  return segments;
}

absl::Status Recovery::ReplayLog() {
  PEAKKNN_ASSIGN_OR_RETURN(std::vector<WalSegment> segments, FindSegments());
  if (!segments.empty()) out_.next_segment = segments.back().number + 1;
  for (size_t i = 0; i < segments.size(); ++i) {
    const bool last = i + 1 == segments.size();
    absl::Status replayed = ReplaySegment(segments[i], last);
    if (replayed.ok()) continue;
    if (!options_.truncate_corrupt_wal ||
        replayed.code() != absl::StatusCode::kDataLoss) {
      return replayed;
    }
    // ReplaySegment cut segment i at the bad record; later segments hold
    // records after it, which would leave a hole.
    if (absl::Status s = DeleteSegmentsAfterCut(
            std::span<const WalSegment>(segments).subspan(i + 1));
        !s.ok()) {
      return s;
    }
    segments.resize(i + 1);
    break;
  }
  // Segments left empty (a restart with no writes, a cut torn tail) hold
  // nothing to replay; drop them so restarts do not accumulate files.
  for (const WalSegment& segment : segments) {
    if (segment.bytes > 0) {
      out_.segments.push_back(segment);
    } else if (absl::Status d = env_->DeleteFile(
                   JoinPath(dir_, WalSegmentName(segment.number)));
               !d.ok()) {
      return d;
    }
  }
  return absl::OkStatus();
}

absl::Status Recovery::DeleteSegmentsAfterCut(
    std::span<const WalSegment> segments) {
  for (const WalSegment& segment : segments) {
    const std::string path = JoinPath(dir_, WalSegmentName(segment.number));
    auto size = env_->GetFileSize(path);
    out_.report.truncated_bytes += size.ok() ? static_cast<int64_t>(*size) : 0;
    if (absl::Status d = env_->DeleteFile(path); !d.ok()) return d;
    options_.log(absl::StrCat("truncate_corrupt_wal: deleted ", path,
                              ", which follows the corrupt record"));
  }
  return absl::OkStatus();
}

absl::Status Recovery::ApplyRecord(const std::string& path,
                                   const WalRecord& record,
                                   WalSegment& segment) {
  const auto where = [&] {
    return absl::StrCat(path, " offset ", record.offset, " (sequence ",
                        record.sequence, ")");
  };
  segment.max_sequence = std::max(segment.max_sequence, record.sequence);
  if (record.sequence <= out_.report.checkpoint_sequence) {
    return absl::OkStatus();  // in the checkpoint already
  }
  if (record.sequence <= out_.last_sequence) {
    return absl::DataLossError(
        absl::StrCat(where(), ": sequence not above the previous record's ",
                     out_.last_sequence));
  }
  auto batch = DecodeWalRecord(record);
  if (!batch.ok()) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", batch.status().message()));
  }
  Collection& collection = *out_.collection;
  if (batch->type == WalRecordType::kDelete) {
    collection.Delete(batch->ids);
  } else {
    if (batch->dim != collection.schema().dim) {
      return absl::DataLossError(absl::StrCat(where(), ": dim ", batch->dim,
                                              " but the collection's is ",
                                              collection.schema().dim));
    }
    absl::Status s = collection.Write(batch->mode, batch->ids, batch->vectors);
    if (!s.ok()) {
      return absl::DataLossError(absl::StrCat(
          where(), ": logged batch does not apply: ", s.message()));
    }
  }
  out_.last_sequence = record.sequence;
  ++out_.report.replayed_records;
  return absl::OkStatus();
}

absl::Status Recovery::ReplaySegment(WalSegment& segment, bool last) {
  const std::string path = JoinPath(dir_, WalSegmentName(segment.number));
  auto scan = ScanWalSegment(env_, path, [&](const WalRecord& record) {
    return ApplyRecord(path, record, segment);
  });
  if (!scan.ok()) return scan.status();
  segment.bytes = static_cast<int64_t>(scan->valid_bytes);
  if (scan->tail == WalTail::kClean) return absl::OkStatus();
  const uint64_t cut = scan->file_bytes - scan->valid_bytes;
  const std::string where =
      absl::StrCat(path, " offset ", scan->valid_bytes, ": ", scan->problem);
  if (scan->tail == WalTail::kTorn && last) {
    if (absl::Status s = CutSegment(env_, path, scan->valid_bytes); !s.ok()) {
      return s;
    }
    out_.report.truncated_bytes += static_cast<int64_t>(cut);
    options_.log(absl::StrCat("truncated torn log tail at ", where, " (", cut,
                              " bytes)"));
    return absl::OkStatus();
  }
  const std::string problem =
      absl::StrCat(scan->tail == WalTail::kTorn
                       ? "torn record in a log segment that is "
                         "not the last, "
                       : "corrupt log record in the middle of the log, ",
                   where);
  if (!options_.truncate_corrupt_wal) {
    return absl::DataLossError(
        absl::StrCat(problem, " (", cut,
                     " bytes follow); start with truncate_corrupt_wal "
                     "to cut the log there, losing them"));
  }
  if (absl::Status s = CutSegment(env_, path, scan->valid_bytes); !s.ok()) {
    return s;
  }
  out_.report.truncated_bytes += static_cast<int64_t>(cut);
  options_.log(absl::StrCat("truncate_corrupt_wal: cut the log at ", problem,
                            ", ", cut, " bytes dropped"));
  return absl::DataLossError(problem);
}

}  // namespace

absl::StatusOr<RecoveredCollection> RecoverCollection(
    Env* env, const std::string& dir, const CollectionOptions& collection,
    const RecoveryOptions& options) {
  const absl::Time start = absl::Now();
  RecoveredCollection out;
  PEAKKNN_ASSIGN_OR_RETURN(out.manifest, ReadManifest(env, dir));
  PEAKKNN_ASSIGN_OR_RETURN(out.collection,
                           Collection::Create(out.manifest.schema, collection));
  Recovery recovery(env, dir, options, out);
  PEAKKNN_RETURN_IF_ERROR(recovery.LoadCheckpoint());
  PEAKKNN_RETURN_IF_ERROR(recovery.ReplayLog());
  RecoveryReport& report = out.report;
  report.elapsed = absl::Now() - start;
  if (report.replayed_records > 0 || report.truncated_bytes > 0) {
    options.log(absl::StrCat("recovered collection '", out.manifest.schema.name,
                             "' in ", absl::FormatDuration(report.elapsed),
                             ": checkpoint ", report.checkpoint_sequence, " (",
                             report.checkpoint_rows, " rows) + ",
                             report.replayed_records, " log records, ",
                             report.truncated_bytes, " bytes truncated"));
  }
  return out;
}

}  // namespace peakknn
