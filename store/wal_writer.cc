#include "store/wal_writer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "store/data_dir.h"

namespace peakknn {

absl::StatusOr<std::unique_ptr<WalWriter>> WalWriter::Open(
    Env* env, std::string dir, std::vector<WalSegment> segments,
    uint64_t next_number, uint64_t durable_sequence, WalWriterOptions options) {
  std::unique_ptr<WalWriter> writer(
      new WalWriter(env, std::move(dir), std::move(segments), durable_sequence,
                    std::move(options)));
  auto active = writer->CreateSegment(next_number);
  if (!active.ok()) return active.status();
  // Released until the first append: an idle collection holds no file.
  writer->CloseSynced(**active);
  std::lock_guard lock(writer->mu_);
  writer->segments_.push_back(WalSegment{next_number, 0, 0});
  return writer;
}

WalWriter::WalWriter(Env* env, std::string dir,
                     std::vector<WalSegment> segments,
                     uint64_t durable_sequence, WalWriterOptions options)
    : env_(env),
      dir_(std::move(dir)),
      options_(std::move(options)),
      rotation_errors_(absl::Minutes(1), options_.log),
      segments_(std::move(segments)),
      durable_sequence_(durable_sequence) {
  int64_t bytes = 0;
  for (const WalSegment& segment : segments_) bytes += segment.bytes;
  bytes_ = bytes;
}

WalWriter::~WalWriter() { Close().IgnoreError(); }

absl::StatusOr<std::unique_ptr<WritableFile>> WalWriter::CreateSegment(
    uint64_t number) {
  auto file = env_->NewWritableFile(JoinPath(dir_, WalSegmentName(number)));
  if (!file.ok()) return file.status();
  if (absl::Status s = env_->SyncDir(dir_); !s.ok()) return s;
  return file;
}

absl::Status WalWriter::ReopenActiveLocked() {
  const WalSegment& segment = segments_.back();
  auto file =
      env_->NewAppendableFile(JoinPath(dir_, WalSegmentName(segment.number)));
  if (!file.ok()) return file.status();
  // Only this writer writes the segment, and a failed append was cut back
  // before it was released, so its length is exactly the records counted.
  if ((*file)->Size() != static_cast<uint64_t>(segment.bytes)) {
    return absl::InternalError(
        absl::StrCat("write-ahead log segment ", (*file)->path(), " is ",
                     (*file)->Size(), " bytes, but ", segment.bytes,
                     " were written to it: it changed while closed"));
  }
  active_ = *std::move(file);
  return absl::OkStatus();
}

void WalWriter::CloseSynced(WritableFile& file) {
  if (absl::Status closed = file.Close(); !closed.ok()) {
    options_.log(
        absl::StrCat("write-ahead log in ", dir_,
                     ": closing a synced segment: ", closed.message()));
  }
}

absl::Status WalWriter::ClosedError() const {
  return absl::FailedPreconditionError(
      absl::StrCat("write-ahead log in ", dir_, " is closed"));
}

void WalWriter::RaiseDurable(uint64_t sequence) {
  uint64_t durable = durable_sequence_.load();
  while (durable < sequence &&
         !durable_sequence_.compare_exchange_weak(durable, sequence)) {
  }
}

absl::Status WalWriter::Append(std::string_view records, uint64_t last_sequence,
                               bool sync) {
  std::lock_guard lock(mu_);
  if (closed_) return ClosedError();
  if (!broken_.ok()) return broken_;
  if (active_ == nullptr) {
    // Nothing was written: the group fails and the log is unchanged.
    if (absl::Status s = ReopenActiveLocked(); !s.ok()) return s;
  }
  const uint64_t start = active_->Size();
  absl::Status s;
  if (!records.empty()) s = active_->Append(records);
  if (!s.ok()) {
    // Cut the failed group off so no later record sits behind it and a
    // restart never replays a batch that was reported failed.
    absl::Status undo = active_->Truncate(start);
    if (undo.ok()) undo = active_->Sync();
    if (!undo.ok()) {
      broken_ = absl::InternalError(
          absl::StrCat(s.message(), "; rolling back to offset ", start,
                       " failed too: ", undo.message()));
    }
    return s;
  }
  if (sync && (active_unsynced_ || !records.empty())) {
    const absl::Time sync_start = absl::Now();
    s = active_->Sync();
    if (options_.on_fsync) options_.on_fsync(absl::Now() - sync_start);
    if (!s.ok()) return BreakOnFailedSync(s);
  }
  WalSegment& segment = segments_.back();
  if (!records.empty()) {
    segment.max_sequence = last_sequence;
    segment.bytes += static_cast<int64_t>(records.size());
    bytes_ += static_cast<int64_t>(records.size());
  }
  if (sync) {
    active_unsynced_ = false;
    RaiseDurable(last_sequence);
  } else if (!records.empty()) {
    active_unsynced_ = true;
  }
  if (segment.bytes >= options_.segment_bytes) {
    // The group is logged whatever happens here; a segment that cannot be
    // started now is tried again after the next append.
    RotateLocked().IgnoreError();  // logged
  }
  return absl::OkStatus();
}

absl::Status WalWriter::broken() const {
  std::lock_guard lock(mu_);
  return broken_;
}

absl::Status WalWriter::Rotate() {
  std::lock_guard lock(mu_);
  return RotateLocked();
}

absl::Status WalWriter::SyncActiveLocked() {
  // Unsynced records imply an open file (Release syncs before it closes).
  if (!active_unsynced_) return absl::OkStatus();
  if (absl::Status s = active_->Sync(); !s.ok()) return BreakOnFailedSync(s);
  active_unsynced_ = false;
  RaiseDurable(segments_.back().max_sequence);
  return absl::OkStatus();
}

absl::Status WalWriter::BreakOnFailedSync(const absl::Status& failed) {
  broken_ = absl::Status(
      failed.code(),
      absl::StrCat(failed.message(),
                   "; the log's unsynced records may be lost, and no later "
                   "fsync could tell, so it takes no more writes until a "
                   "restart recovers from the files"));
  return failed;
}

absl::Status WalWriter::RotateLocked() {
  if (closed_) return ClosedError();
  if (!broken_.ok()) return broken_;
  const WalSegment& old = segments_.back();
  if (old.bytes == 0) return absl::OkStatus();
  // Segments before the active one are always fully synced, so only the
  // active segment's records can be waiting for an fsync.
  absl::Status s = SyncActiveLocked();
  absl::StatusOr<std::unique_ptr<WritableFile>> next =
      s.ok() ? CreateSegment(old.number + 1) : s;
  if (!next.ok()) {
    rotation_errors_.Log(absl::StrCat(
        "write-ahead log in ", dir_, ": could not start segment ",
        WalSegmentName(old.number + 1), " (", next.status().message(),
        "); appending to ", WalSegmentName(old.number), " (", old.bytes,
        " bytes) until a later try succeeds"));
    return next.status();
  }
  const uint64_t number = old.number + 1;
  // The old segment is synced. A released writer stays released: its next
  // append opens the new segment.
  if (active_ == nullptr) {
    CloseSynced(**next);
  } else {
    CloseSynced(*active_);
    active_ = *std::move(next);
  }
  segments_.push_back(WalSegment{number, 0, 0});
  return absl::OkStatus();
}

absl::Status WalWriter::RetireSegments(uint64_t checkpoint_sequence) {
  RaiseDurable(checkpoint_sequence);
  std::lock_guard lock(mu_);
  absl::Status first;
  std::vector<WalSegment> kept;
  for (size_t i = 0; i < segments_.size(); ++i) {
    const bool active = i + 1 == segments_.size();
    if (!active && segments_[i].max_sequence <= checkpoint_sequence) {
      first.Update(env_->DeleteFile(
          JoinPath(dir_, WalSegmentName(segments_[i].number))));
      bytes_ -= segments_[i].bytes;
    } else {
      kept.push_back(segments_[i]);
    }
  }
  segments_ = std::move(kept);
  return first;
}

absl::Status WalWriter::Release() {
  std::lock_guard lock(mu_);
  if (active_ == nullptr) return absl::OkStatus();
  if (broken_.ok()) {
    if (absl::Status s = SyncActiveLocked(); !s.ok()) return s;
  }
  absl::Status s = active_->Close();
  active_.reset();
  return s;
}

absl::Status WalWriter::Close() {
  std::lock_guard lock(mu_);
  if (closed_) return absl::OkStatus();
  closed_ = true;
  if (active_ == nullptr) return absl::OkStatus();
  // A broken log is not synced again (see BreakOnFailedSync).
  absl::Status s = broken_.ok() ? SyncActiveLocked() : absl::OkStatus();
  s.Update(active_->Close());
  active_.reset();
  return s;
}

bool WalWriter::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

}  // namespace peakknn
