#include "store/durable_collection.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/notification.h"
#include "engine/collection_maintenance.h"
#include "engine/vector_checks.h"
#include "store/checkpoint.h"
#include "store/data_dir.h"

namespace peakknn {

DurableCollection::DurableCollection(std::string dir,
                                     const DurableCollectionOptions& options,
                                     RecoveredCollection recovered,
                                     std::unique_ptr<WalWriter> wal)
    : dir_(std::move(dir)),
      options_(options),
      log_(LogOrStderr(options.log)),
      env_(options.env != nullptr ? options.env : Env::Default()),
      collection_(std::move(recovered.collection)),
      default_durability_(recovered.manifest.default_durability),
      recovery_(recovered.report),
      wal_(std::move(wal)),
      committer_(options.idle_timeout) {
  {
    std::lock_guard lock(mu_);
    last_sequence_ = recovered.last_sequence;
  }
  {
    std::lock_guard lock(apply_mu_);
    applied_sequence_ = recovered.last_sequence;
  }
  std::lock_guard lock(ckpt_mu_);
  manifest_ = recovered.manifest;
  last_checkpoint_ = absl::Now();
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
  if (!s.ok()) {
    // Best effort: recovery removes leftover *.creating directories too.
    RemoveFlatDir(env, creating).IgnoreError();
    return s;
  }
  s = env->SyncDir(ParentDir(dir));
  if (s.ok()) {
    auto opened = Open(dir, options);
    if (opened.ok()) return opened;
    s = opened.status();
  }
  // The directory is in place but the create failed: take it away again,
  // the way a drop does, so that nothing finds a collection that was never
  // reported created.
  if (absl::Status undo = DropCollectionDir(env, dir); !undo.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat(s.message(), "; removing ", dir,
                                     " again failed too: ", undo.message()));
  }
  return s;
}

absl::StatusOr<std::unique_ptr<DurableCollection>> DurableCollection::Open(
    const std::string& dir, const DurableCollectionOptions& options) {
  Env* env = options.env != nullptr ? options.env : Env::Default();
  RecoveryOptions recovery;
  recovery.truncate_corrupt_wal = options.truncate_corrupt_wal;
  recovery.log = LogOrStderr(options.log);
  auto recovered = RecoverCollection(env, dir, options.collection, recovery);
  if (!recovered.ok()) return recovered.status();
  WalWriterOptions wal_options;
  wal_options.segment_bytes = options.wal_segment_bytes;
  wal_options.log = recovery.log;
  wal_options.on_fsync = options.on_wal_fsync;
  // Replayed records count as durable: they were read back from the files.
  // (Records a previous process logged with durability none may still sit
  // in the OS page cache; the next checkpoint fsyncs them.)
  auto wal = WalWriter::Open(env, dir, std::move(recovered->segments),
                             recovered->next_segment, recovered->last_sequence,
                             wal_options);
  if (!wal.ok()) return wal.status();
  // The commit thread starts with the first write.
  return std::unique_ptr<DurableCollection>(new DurableCollection(
      dir, options, *std::move(recovered), *std::move(wal)));
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

std::vector<uint64_t> DurableCollection::ExistingIds(
    std::span<const uint64_t> ids) const {
  // Presence as in CheckInsertIds: the overlay first, then the collection.
  absl::flat_hash_set<uint64_t> seen;
  std::vector<uint64_t> existing, untouched;
  for (uint64_t id : ids) {
    if (!seen.insert(id).second) continue;
    auto it = overlay_.find(id);
    if (it == overlay_.end()) {
      untouched.push_back(id);
    } else if (it->second.present) {
      existing.push_back(id);
    }
  }
  const std::vector<uint64_t> held = collection_->PresentIds(untouched);
  existing.insert(existing.end(), held.begin(), held.end());
  return existing;
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
          "' refuses writes after a write-ahead log I/O error it cannot "
          "recover from while running (",
          broken_.message(), "); restart to recover from disk"));
    } else if (op.type == WalRecordType::kWrite &&
               op.mode == WriteMode::kInsert) {
      refused = CheckInsertIds(op.ids);
    } else if (op.type == WalRecordType::kDelete) {
      op.ids = ExistingIds(op.ids);
      op.logged = !op.ids.empty();
    }
    if (refused.ok()) {
      if (op.logged) {
        op.sequence = ++last_sequence_;
        if (op.type == WalRecordType::kWrite) {
          AppendWalWrite(op.sequence, op.mode, op.ids, op.vectors, schema().dim,
                         &group_);
        } else {
          AppendWalDelete(op.sequence, op.ids, &group_);
        }
      } else {
        op.sequence = last_sequence_;
      }
      const bool present = op.type == WalRecordType::kWrite;
      for (uint64_t id : op.ids) {
        overlay_[id] = OverlayEntry{present, op.sequence};
      }
      queue_.push_back(std::move(op));
      if (!committer_.Start([this] { CommitLoop(); })) work_cv_.notify_one();
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

void DurableCollection::CommitLoop() {
  while (true) {
    std::deque<Op> ops;
    if (writing_.capacity() > kMaxKeptGroupBytes) {
      std::string().swap(writing_);
    } else {
      writing_.clear();
    }
    {
      std::unique_lock lock(mu_);
      const auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || closing_;
      };
      if (!work_cv_.wait_for(lock, committer_.idle(), ready)) {
        // Idle: close the log's file (unlocked: it may fsync), then end
        // unless a write came in meanwhile.
        lock.unlock();
        ReleaseLog();
        lock.lock();
      }
      if (queue_.empty()) {  // idle, or closing and drained
        committer_.Exiting();
        return;
      }
      writing_.swap(group_);
      ops.swap(queue_);
    }
    const bool sync = std::any_of(ops.begin(), ops.end(),
                                  [](const Op& op) { return op.sync; });
    const absl::Status written =
        wal_->Append(writing_, ops.back().sequence, sync);
    if (!written.ok()) {
      FailGroup(ops, written);
      continue;
    }
    std::vector<absl::StatusOr<WriteAck>> results(ops.size());
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

void DurableCollection::ReleaseLog() {
  if (absl::Status s = wal_->Release(); !s.ok()) {
    log_(absl::StrCat("collection '", schema().name,
                      "': closing the idle write-ahead log: ", s.message()));
    NoteBrokenLog();
  }
}

void DurableCollection::NoteBrokenLog() {
  const absl::Status broken = wal_->broken();
  if (broken.ok()) return;
  std::lock_guard lock(mu_);
  broken_ = broken;
}

void DurableCollection::FailGroup(std::deque<Op>& ops,
                                  const absl::Status& written) {
  const absl::Status failed = absl::Status(
      written.code(),
      absl::StrCat("write-ahead log of collection '", schema().name,
                   "': ", written.message(), "; batch not applied"));
  NoteBrokenLog();
  {
    std::lock_guard lock(mu_);
    // Batches queued behind the group were validated assuming it applies;
    // fail them too and restart admission from the last applied state.
    for (Op& op : queue_) ops.push_back(std::move(op));
    queue_.clear();
    group_.clear();
    overlay_.clear();
    std::lock_guard applied(apply_mu_);
    last_sequence_ = applied_sequence_;
  }
  for (Op& op : ops) op.done(failed);
}

WriteAck DurableCollection::Apply(const Op& op) {
  WriteAck ack;
  ack.sequence = op.sequence;
  ack.durability = op.sync ? Durability::kFsync : Durability::kNone;
  if (!op.logged) return ack;  // a delete of no existing id
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
  if (wal_->closed()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint of collection '", schema().name, "': it is closed"));
  }
  // Start a fresh segment so the ones before it can be retired once the
  // checkpoint covers them. If none can be started (logged by the writer),
  // the checkpoint still bounds recovery; a later one retires the segment.
  if (!wal_->Rotate().ok()) NoteBrokenLog();
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
  cleanup.Update(wal_->RetireSegments(sequence));
  if (!cleanup.ok()) {
    log_(absl::StrCat(
        "checkpoint of '", schema().name,
        "' installed; cleaning up old files failed: ", cleanup.message()));
  }
  return absl::OkStatus();
}

bool DurableCollection::CheckpointDue(int64_t wal_bytes,
                                      absl::Duration max_age) const {
  std::lock_guard ckpt(ckpt_mu_);
  const bool old = absl::Now() - last_checkpoint_ >= max_age;
  const int64_t bytes = wal_->bytes();
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
  committer_.Join();
  absl::Status s;
  if (checkpoint) s = Checkpoint();
  s.Update(wal_->Close());
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
  return wal_->durable_sequence();
}

int64_t DurableCollection::disk_bytes() const {
  std::lock_guard ckpt(ckpt_mu_);
  return static_cast<int64_t>(manifest_.data_bytes) + wal_->bytes();
}

}  // namespace peakknn
