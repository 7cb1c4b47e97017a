#include "store/durable_collection.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/notification.h"
#include "engine/collection_maintenance.h"
#include "engine/vector_checks.h"
#include "store/data_dir.h"
#include "store/wal_reader.h"

namespace peakknn {
DurableCollection::DurableCollection(std::string dir,
                                     const DurableCollectionOptions& options,
                                     std::unique_ptr<Collection> collection,
                                     const CheckpointManifest& manifest)
    : dir_(std::move(dir)),
      options_(options),
      env_(options.env != nullptr ? options.env : Env::Default()),
      collection_(std::move(collection)),
      default_durability_(manifest.default_durability) {
  std::lock_guard lock(ckpt_mu_);
  manifest_ = manifest;
  last_checkpoint_ = absl::Now();
}

void DurableCollection::Log(std::string_view line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "peakknn: %.*s\n", static_cast<int>(line.size()),
                 line.data());
  }
}

absl::StatusOr<std::unique_ptr<DurableCollection>> DurableCollection::Create(
    const std::string& dir, const CollectionSchema& schema,
    Durability default_durability, const DurableCollectionOptions& options) {
  Env* env = options.env != nullptr ? options.env : Env::Default();
  if (env->FileExists(dir)) {
    return absl::AlreadyExistsError(
        absl::StrCat("collection directory ", dir, " already exists"));
  }
  CheckpointManifest manifest;
  manifest.schema = schema;
  manifest.default_durability = default_durability == Durability::kDefault
                                    ? Durability::kFsync
                                    : default_durability;
  const std::string creating = CreatingDir(dir);
  if (absl::Status s = env->CreateDir(creating); !s.ok()) return s;
  absl::Status s = WriteManifest(env, creating, manifest);
  if (s.ok()) s = env->RenameFile(creating, dir);
  if (s.ok()) s = env->SyncDir(ParentDir(dir));
  if (!s.ok()) {
    // Best effort: recovery removes leftover *.creating directories too.
    RemoveFlatDir(env, creating).IgnoreError();
    return s;
  }
  return Open(dir, options);
}

absl::StatusOr<std::unique_ptr<DurableCollection>> DurableCollection::Open(
    const std::string& dir, const DurableCollectionOptions& options) {
  Env* env = options.env != nullptr ? options.env : Env::Default();
  auto manifest = ReadManifest(env, dir);
  if (!manifest.ok()) return manifest.status();
  auto collection = Collection::Create(manifest->schema, options.collection);
  if (!collection.ok()) return collection.status();
  std::unique_ptr<DurableCollection> c(
      new DurableCollection(dir, options, *std::move(collection), *manifest));
  if (absl::Status s = c->Recover(); !s.ok()) return s;
  c->committer_ = std::thread([p = c.get()] { p->CommitLoop(); });
  return c;
}

absl::Status DurableCollection::Recover() {
  const absl::Time start = absl::Now();
  CheckpointManifest manifest;
  {
    std::lock_guard lock(ckpt_mu_);
    manifest = manifest_;
  }
  absl::Status s = ReadCheckpointRows(
      env_, dir_, manifest,
      [&](std::span<const uint64_t> ids, std::span<const float> vectors) {
        return CollectionMaintenance::RestoreRows(*collection_, ids, vectors);
      });
  if (!s.ok()) return s;
  recovery_.checkpoint_sequence = manifest.sequence;
  recovery_.checkpoint_rows = manifest.rows;
  if (absl::Status stale = DeleteStaleCheckpointFiles(env_, dir_, manifest);
      !stale.ok()) {
    Log(absl::StrCat("could not delete stale checkpoint files: ",
                     stale.message()));
  }

  auto names = env_->GetChildren(dir_);
  if (!names.ok()) return names.status();
  std::vector<Segment> segments;
  for (const std::string& name : *names) {
    if (auto number = ParseWalSegmentName(name)) {
      segments.push_back(Segment{*number, 0, 0});
    }
  }
  std::sort(
      segments.begin(), segments.end(),
      [](const Segment& a, const Segment& b) { return a.number < b.number; });
  uint64_t last_sequence = manifest.sequence;
  for (size_t i = 0; i < segments.size(); ++i) {
    const bool last = i + 1 == segments.size();
    absl::Status replayed = ReplaySegment(&segments[i], last, &last_sequence);
    if (replayed.ok()) continue;
    if (!options_.truncate_corrupt_wal ||
        replayed.code() != absl::StatusCode::kDataLoss) {
      return replayed;
    }
    // ReplaySegment cut segment i at the bad record; later segments hold
    // records after it, which would leave a hole: delete them.
    for (size_t j = i + 1; j < segments.size(); ++j) {
      const std::string path =
          JoinPath(dir_, WalSegmentName(segments[j].number));
      auto size = env_->GetFileSize(path);
      recovery_.truncated_bytes += size.ok() ? static_cast<int64_t>(*size) : 0;
      if (absl::Status d = env_->DeleteFile(path); !d.ok()) return d;
      Log(absl::StrCat("truncate_corrupt_wal: deleted ", path,
                       ", which follows the corrupt record"));
    }
    segments.resize(i + 1);
    break;
  }
  // Segments left empty (a restart with no writes, a cut torn tail) hold
  // nothing to replay; drop them so restarts do not accumulate files.
  std::vector<Segment> nonempty;
  for (const Segment& segment : segments) {
    if (segment.bytes > 0) {
      nonempty.push_back(segment);
    } else if (absl::Status d = env_->DeleteFile(
                   JoinPath(dir_, WalSegmentName(segment.number)));
               !d.ok()) {
      return d;
    }
  }
  const uint64_t next = segments.empty() ? 1 : segments.back().number + 1;
  segments = std::move(nonempty);
  {
    std::lock_guard lock(mu_);
    last_sequence_ = last_sequence;
  }
  {
    std::lock_guard lock(apply_mu_);
    applied_sequence_ = last_sequence;
  }
  std::lock_guard lock(file_mu_);
  // Replayed records count as durable: they were read back from the files.
  // (Records a previous process logged with durability none may still sit
  // in the OS page cache; the next checkpoint fsyncs them.)
  durable_sequence_ = last_sequence;
  segments_ = segments;
  if (absl::Status started = StartSegment(next); !started.ok()) return started;
  recovery_.elapsed = absl::Now() - start;
  if (recovery_.replayed_records > 0 || recovery_.truncated_bytes > 0) {
    Log(absl::StrCat("recovered collection '", manifest.schema.name, "' in ",
                     absl::FormatDuration(recovery_.elapsed), ": checkpoint ",
                     manifest.sequence, " (", manifest.rows, " rows) + ",
                     recovery_.replayed_records, " log records, ",
                     recovery_.truncated_bytes, " bytes truncated"));
  }
  return absl::OkStatus();
}

absl::Status DurableCollection::ReplaySegment(Segment* segment, bool last,
                                              uint64_t* last_sequence) {
  const std::string path = JoinPath(dir_, WalSegmentName(segment->number));
  Segment& info = *segment;
  auto scan = ScanWalSegment(env_, path, [&](const WalRecord& record) {
    const auto where = [&] {
      return absl::StrCat(path, " offset ", record.offset, " (sequence ",
                          record.sequence, ")");
    };
    info.max_sequence = std::max(info.max_sequence, record.sequence);
    if (record.sequence <= recovery_.checkpoint_sequence) {
      return absl::OkStatus();  // in the checkpoint already
    }
    if (record.sequence <= *last_sequence) {
      return absl::DataLossError(
          absl::StrCat(where(), ": sequence not above the previous record's ",
                       *last_sequence));
    }
    auto batch = DecodeWalRecord(record);
    if (!batch.ok()) {
      return absl::DataLossError(
          absl::StrCat(path, ": ", batch.status().message()));
    }
    if (batch->type == WalRecordType::kDelete) {
      collection_->Delete(batch->ids);
    } else {
      if (batch->dim != collection_->schema().dim) {
        return absl::DataLossError(absl::StrCat(where(), ": dim ", batch->dim,
                                                " but the collection's is ",
                                                collection_->schema().dim));
      }
      absl::Status s =
          collection_->Write(batch->mode, batch->ids, batch->vectors);
      if (!s.ok()) {
        return absl::DataLossError(absl::StrCat(
            where(), ": logged batch does not apply: ", s.message()));
      }
    }
    *last_sequence = record.sequence;
    ++recovery_.replayed_records;
    return absl::OkStatus();
  });
  if (!scan.ok()) return scan.status();
  info.bytes = static_cast<int64_t>(scan->valid_bytes);
  if (scan->tail == WalTail::kClean) return absl::OkStatus();
  const uint64_t cut = scan->file_bytes - scan->valid_bytes;
  const std::string where =
      absl::StrCat(path, " offset ", scan->valid_bytes, ": ", scan->problem);
  if (scan->tail == WalTail::kTorn && last) {
    // A crash mid-append: nothing here was acknowledged (acks follow the
    // write), so the partial record is dropped.
    if (absl::Status s = env_->TruncateFile(path, scan->valid_bytes); !s.ok()) {
      return s;
    }
    recovery_.truncated_bytes += static_cast<int64_t>(cut);
    Log(absl::StrCat("truncated torn log tail at ", where, " (", cut,
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
  if (absl::Status s = env_->TruncateFile(path, scan->valid_bytes); !s.ok()) {
    return s;
  }
  recovery_.truncated_bytes += static_cast<int64_t>(cut);
  Log(absl::StrCat("truncate_corrupt_wal: cut the log at ", problem, ", ", cut,
                   " bytes dropped"));
  // Reported as DATA_LOSS so Recover drops the segments after this one.
  return absl::DataLossError(problem);
}

absl::Status DurableCollection::StartSegment(uint64_t number) {
  const std::string path = JoinPath(dir_, WalSegmentName(number));
  auto file = env_->NewWritableFile(path);
  if (!file.ok()) return file.status();
  if (absl::Status s = env_->SyncDir(dir_); !s.ok()) return s;
  active_ = *std::move(file);
  active_unsynced_ = false;
  segments_.push_back(Segment{number, 0, 0});
  return absl::OkStatus();
}

absl::Status DurableCollection::RotateSegment() {
  if (active_unsynced_) {
    if (absl::Status s = active_->Sync(); !s.ok()) return s;
    active_unsynced_ = false;
    durable_sequence_ =
        std::max(durable_sequence_, segments_.back().max_sequence);
  }
  if (absl::Status s = active_->Close(); !s.ok()) return s;
  return StartSegment(segments_.back().number + 1);
}

Durability DurableCollection::Resolve(Durability requested) const {
  return requested == Durability::kDefault ? default_durability_ : requested;
}

void DurableCollection::WriteAsync(WriteMode mode,
                                   std::span<const uint64_t> ids,
                                   std::span<const float> vectors,
                                   Durability durability, WriteCallback done,
                                   std::shared_ptr<const void> owner) {
  // The stateless checks (sizes, finite values, duplicates within the
  // batch) run here, on the caller's thread and before any lock, so
  // concurrent writers check in parallel. Only the id-existence check of an
  // insert needs the collection's state; it runs at admission (Submit).
  if (absl::Status s = CheckWriteBatch(schema(), ids, vectors); !s.ok()) {
    done(s);
    return;
  }
  Op op;
  op.type = WalRecordType::kWrite;
  op.mode = mode;
  op.sync = Resolve(durability) == Durability::kFsync;
  op.ids.assign(ids.begin(), ids.end());
  // Copied (when not owned) before admission takes mu_, so concurrent
  // writers copy in parallel.
  op.owner = std::move(owner);
  if (op.owner != nullptr) {
    op.vectors = vectors;
  } else {
    op.vectors_copy.assign(vectors.begin(), vectors.end());
    op.vectors = op.vectors_copy;
  }
  op.done = std::move(done);
  Submit(std::move(op));
}

void DurableCollection::DeleteAsync(std::span<const uint64_t> ids,
                                    Durability durability, WriteCallback done) {
  Op op;
  op.type = WalRecordType::kDelete;
  op.sync = Resolve(durability) == Durability::kFsync;
  op.ids.assign(ids.begin(), ids.end());
  op.done = std::move(done);
  Submit(std::move(op));
}

absl::Status DurableCollection::CheckInsertIds(
    std::span<const uint64_t> ids) const {
  // An id is present if the last logged-but-unapplied batch touching it
  // wrote it, or (untouched) if the collection holds it. Batches leave the
  // overlay only after they are applied, so under mu_ nothing falls between.
  std::vector<uint64_t> untouched;
  untouched.reserve(ids.size());
  for (uint64_t id : ids) {
    auto it = overlay_.find(id);
    if (it == overlay_.end()) {
      untouched.push_back(id);
    } else if (it->second.present) {
      return absl::AlreadyExistsError(
          absl::StrCat("id ", id, " already exists in collection '",
                       schema().name, "' (written by batch ",
                       it->second.sequence, "); use upsert to replace it"));
    }
  }
  if (std::optional<uint64_t> id = collection_->FirstPresent(untouched)) {
    return absl::AlreadyExistsError(
        absl::StrCat("id ", *id, " already exists in collection '",
                     schema().name, "'; use upsert to replace it"));
  }
  return absl::OkStatus();
}

void DurableCollection::Submit(Op op) {
  absl::Status refused;
  {
    std::lock_guard lock(mu_);
    if (closing_) {
      refused = dropped_ ? absl::NotFoundError(absl::StrCat(
                               "collection '", schema().name, "' was dropped"))
                         : absl::FailedPreconditionError(absl::StrCat(
                               "collection '", schema().name, "' is closed"));
    } else if (!broken_.ok()) {
      refused = absl::UnavailableError(absl::StrCat(
          "collection '", schema().name,
          "' refuses writes after a log I/O error it could not roll back (",
          broken_.message(), "); restart to recover from disk"));
    } else if (op.type == WalRecordType::kWrite &&
               op.mode == WriteMode::kInsert) {
      refused = CheckInsertIds(op.ids);
    }
    if (refused.ok()) {
      op.sequence = ++last_sequence_;
      if (op.type == WalRecordType::kWrite) {
        AppendWalWrite(op.sequence, op.mode, op.ids, op.vectors, schema().dim,
                       &group_);
      } else {
        AppendWalDelete(op.sequence, op.ids, &group_);
      }
      const bool present = op.type == WalRecordType::kWrite;
      for (uint64_t id : op.ids) {
        overlay_[id] = OverlayEntry{present, op.sequence};
      }
      queue_.push_back(std::move(op));
      work_cv_.notify_one();
      return;
    }
  }
  op.done(refused);
}

absl::StatusOr<WriteAck> DurableCollection::Write(
    WriteMode mode, std::span<const uint64_t> ids,
    std::span<const float> vectors, Durability durability) {
  Notification done;
  absl::StatusOr<WriteAck> result;
  WriteAsync(mode, ids, vectors, durability, [&](absl::StatusOr<WriteAck> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

absl::StatusOr<WriteAck> DurableCollection::Delete(
    std::span<const uint64_t> ids, Durability durability) {
  Notification done;
  absl::StatusOr<WriteAck> result;
  DeleteAsync(ids, durability, [&](absl::StatusOr<WriteAck> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

absl::Status DurableCollection::WriteGroup(const std::string& records,
                                           bool sync, uint64_t max_sequence) {
  std::lock_guard lock(file_mu_);
  const uint64_t start = active_->Size();
  absl::Status s = active_->Append(records);
  if (s.ok() && sync) {
    const absl::Time sync_start = absl::Now();
    s = active_->Sync();
    if (options_.on_wal_fsync) options_.on_wal_fsync(absl::Now() - sync_start);
  }
  if (!s.ok()) {
    // Cut the failed group off so no later record sits behind it and a
    // restart never replays a batch that was reported failed.
    absl::Status undo = active_->Truncate(start);
    if (undo.ok()) undo = active_->Sync();
    if (!undo.ok()) {
      std::lock_guard admission(mu_);
      broken_ = absl::InternalError(
          absl::StrCat(s.message(), "; rolling back to offset ", start,
                       " failed too: ", undo.message()));
    }
    return s;
  }
  Segment& segment = segments_.back();
  segment.max_sequence = max_sequence;
  segment.bytes = static_cast<int64_t>(active_->Size());
  if (sync) {
    active_unsynced_ = false;
    durable_sequence_ = max_sequence;
  } else {
    active_unsynced_ = true;
  }
  if (segment.bytes >= options_.wal_segment_bytes) {
    // The group is logged; a failed rotation only fails later writes.
    if (absl::Status r = RotateSegment(); !r.ok()) {
      std::lock_guard admission(mu_);
      broken_ = r;
    }
  }
  return absl::OkStatus();
}

void DurableCollection::CommitLoop() {
  while (true) {
    std::string records;
    std::deque<Op> ops;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || closing_;
      });
      if (queue_.empty()) return;  // closing and drained
      records.swap(group_);
      ops.swap(queue_);
    }
    const bool sync = std::any_of(ops.begin(), ops.end(),
                                  [](const Op& op) { return op.sync; });
    const absl::Status written = WriteGroup(records, sync, ops.back().sequence);
    std::vector<absl::StatusOr<WriteAck>> results(ops.size());
    if (!written.ok()) {
      const absl::Status failed = absl::Status(
          written.code(),
          absl::StrCat("write-ahead log of collection '", schema().name,
                       "': ", written.message(), "; batch not applied"));
      {
        std::lock_guard lock(mu_);
        // Batches queued behind the group were validated assuming it
        // applies; fail them too and restart admission from the last
        // applied state.
        for (Op& op : queue_) ops.push_back(std::move(op));
        queue_.clear();
        group_.clear();
        overlay_.clear();
        std::lock_guard applied(apply_mu_);
        last_sequence_ = applied_sequence_;
      }
      for (Op& op : ops) op.done(failed);
      continue;
    }
    {
      std::lock_guard lock(apply_mu_);
      for (size_t i = 0; i < ops.size(); ++i) results[i] = Apply(ops[i]);
    }
    {
      std::lock_guard lock(mu_);
      for (const Op& op : ops) {
        for (uint64_t id : op.ids) {
          auto it = overlay_.find(id);
          if (it != overlay_.end() && it->second.sequence <= op.sequence) {
            overlay_.erase(it);
          }
        }
      }
    }
    for (size_t i = 0; i < ops.size(); ++i) ops[i].done(std::move(results[i]));
  }
}

WriteAck DurableCollection::Apply(const Op& op) {
  WriteAck ack;
  ack.sequence = op.sequence;
  ack.durability = op.sync ? Durability::kFsync : Durability::kNone;
  if (op.type == WalRecordType::kDelete) {
    ack.rows = collection_->Delete(op.ids);
  } else {
    // Checked in WriteAsync; an insert's ids were checked against the
    // collection plus every batch logged before it (Submit).
    collection_->Apply(op.ids, op.vectors);
    ack.rows = static_cast<int64_t>(op.ids.size());
  }
  applied_sequence_ = op.sequence;
  return ack;
}

absl::Status DurableCollection::Checkpoint() {
  std::lock_guard ckpt(ckpt_mu_);
  {
    std::lock_guard lock(file_mu_);
    if (active_ == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint of collection '", schema().name, "': it is closed"));
    }
  }
  {
    // Start a fresh segment so the ones before it can be retired once the
    // checkpoint covers them.
    std::lock_guard lock(file_mu_);
    if (segments_.back().bytes > 0) {
      if (absl::Status s = RotateSegment(); !s.ok()) return s;
    }
  }
  uint64_t sequence;
  std::shared_ptr<const Snapshot> snapshot;
  {
    std::lock_guard lock(apply_mu_);
    sequence = applied_sequence_;
    snapshot = collection_->snapshot();
  }
  if (sequence == manifest_.sequence) return absl::OkStatus();
  const absl::Time write_start = absl::Now();
  CheckpointManifest next = manifest_;
  next.sequence = sequence;
  auto installed = WriteCheckpoint(env_, dir_, next, *snapshot);
  if (!installed.ok()) {
    return absl::Status(
        installed.status().code(),
        absl::StrCat("checkpoint of collection '", schema().name, "' at ",
                     sequence, " failed (the previous one stays current): ",
                     installed.status().message()));
  }
  manifest_ = *installed;
  last_checkpoint_ = absl::Now();
  if (options_.on_checkpoint) {
    options_.on_checkpoint(last_checkpoint_ - write_start);
  }
  absl::Status cleanup = DeleteStaleCheckpointFiles(env_, dir_, manifest_);
  std::lock_guard lock(file_mu_);
  durable_sequence_ = std::max(durable_sequence_, sequence);
  std::vector<Segment> kept;
  for (size_t i = 0; i < segments_.size(); ++i) {
    const bool active = i + 1 == segments_.size();
    if (!active && segments_[i].max_sequence <= sequence) {
      cleanup.Update(env_->DeleteFile(
          JoinPath(dir_, WalSegmentName(segments_[i].number))));
    } else {
      kept.push_back(segments_[i]);
    }
  }
  segments_ = std::move(kept);
  if (!cleanup.ok()) {
    Log(absl::StrCat(
        "checkpoint of '", schema().name,
        "' installed; cleaning up old files failed: ", cleanup.message()));
  }
  return absl::OkStatus();
}

bool DurableCollection::CheckpointDue(int64_t wal_bytes,
                                      absl::Duration max_age) const {
  std::lock_guard ckpt(ckpt_mu_);
  const bool old = absl::Now() - last_checkpoint_ >= max_age;
  std::lock_guard lock(file_mu_);
  int64_t bytes = 0;
  for (const Segment& segment : segments_) bytes += segment.bytes;
  return bytes >= wal_bytes || (bytes > 0 && old);
}

int64_t DurableCollection::Compact(double min_dead_fraction) {
  return CollectionMaintenance::CompactBlocks(*collection_, min_dead_fraction);
}

absl::Status DurableCollection::Close(bool checkpoint) {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
    work_cv_.notify_one();
  }
  if (committer_.joinable()) committer_.join();
  absl::Status s;
  if (checkpoint) s = Checkpoint();
  std::lock_guard lock(file_mu_);
  if (active_ != nullptr) {
    if (active_unsynced_) s.Update(active_->Sync());
    s.Update(active_->Close());
    active_.reset();
  }
  return s;
}

void DurableCollection::CloseForDrop() {
  {
    std::lock_guard lock(mu_);
    dropped_ = true;
  }
  Close(/*checkpoint=*/false).IgnoreError();
}

DurableCollection::~DurableCollection() { Close(false).IgnoreError(); }

uint64_t DurableCollection::applied_sequence() const {
  std::lock_guard lock(apply_mu_);
  return applied_sequence_;
}

uint64_t DurableCollection::durable_sequence() const {
  std::lock_guard lock(file_mu_);
  return durable_sequence_;
}

int64_t DurableCollection::disk_bytes() const {
  std::lock_guard ckpt(ckpt_mu_);
  int64_t bytes = static_cast<int64_t>(manifest_.data_bytes);
  std::lock_guard lock(file_mu_);
  for (const Segment& segment : segments_) bytes += segment.bytes;
  return bytes;
}

}  // namespace peakknn
