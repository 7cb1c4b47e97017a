#include "engine/collection_manager.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "engine/absl_view.h"

namespace peakknn {
namespace {

// Removes a flat directory (a collection's files) and the directory.
absl::Status RemoveFlatDir(Env* env, const std::string& dir) {
  auto names = env->GetChildren(dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    if (absl::Status s = env->DeleteFile(JoinPath(dir, name)); !s.ok()) {
      return s;
    }
  }
  return env->DeleteDir(dir);
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.substr(s.size() - suffix.size()) == suffix;
}

absl::Status NotFound(std::string_view name) {
  return absl::NotFoundError(
      absl::StrCat("collection '", AV(name), "' does not exist"));
}

}  // namespace

CollectionManager::CollectionManager(const ManagerOptions& options)
    : options_(options),
      env_(options.env != nullptr ? options.env : Env::Default()) {}

std::unique_ptr<CollectionManager> CollectionManager::Create(
    const ManagerOptions& options) {
  return std::unique_ptr<CollectionManager>(new CollectionManager(options));
}

absl::StatusOr<std::unique_ptr<CollectionManager>> CollectionManager::Open(
    const ManagerOptions& options) {
  std::unique_ptr<CollectionManager> manager = Create(options);
  if (absl::Status s = manager->Recover(); !s.ok()) return s;
  return manager;
}

void CollectionManager::Log(std::string_view line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "peakknn: %.*s\n", static_cast<int>(line.size()),
                 line.data());
  }
}

DurableCollectionOptions CollectionManager::CollectionOptionsFor() const {
  DurableCollectionOptions o;
  o.env = env_;
  o.collection.block_rows = options_.block_rows;
  o.collection.pool = options_.pool;
  o.collection.backend = options_.backend;
  o.wal_segment_bytes = options_.wal_segment_bytes;
  o.truncate_corrupt_wal = options_.truncate_corrupt_wal;
  o.log = options_.log;
  o.on_wal_fsync = options_.on_wal_fsync;
  o.on_checkpoint = options_.on_checkpoint;
  return o;
}

absl::Status CollectionManager::Recover() {
  if (options_.data_dir.empty()) {
    return absl::InvalidArgumentError("data_dir must be set");
  }
  if (absl::Status s = env_->CreateDir(options_.data_dir); !s.ok()) return s;
  auto names = env_->GetChildren(options_.data_dir);
  if (!names.ok()) return names.status();
  std::sort(names->begin(), names->end());
  absl::flat_hash_map<std::string, std::shared_ptr<DurableCollection>> loaded;
  for (const std::string& name : *names) {
    const std::string path = JoinPath(options_.data_dir, name);
    if (EndsWith(name, ".creating") || EndsWith(name, ".dropping")) {
      Log(absl::StrCat("removing ", path,
                       ", left by an interrupted create or drop"));
      if (absl::Status s = RemoveFlatDir(env_, path); !s.ok()) return s;
      continue;
    }
    if (!env_->FileExists(JoinPath(path, kManifestName))) {
      Log(absl::StrCat("ignoring ", path, ": not a collection (no MANIFEST)"));
      continue;
    }
    auto c = DurableCollection::Open(path, CollectionOptionsFor());
    if (!c.ok()) {
      return absl::Status(c.status().code(),
                          absl::StrCat("recovering collection '", name,
                                       "': ", c.status().message()));
    }
    if ((*c)->schema().name != name) {
      return absl::DataLossError(
          absl::StrCat("directory ", path, " holds collection '",
                       (*c)->schema().name, "'; the names must match"));
    }
    loaded[name] = *std::move(c);
  }
  {
    std::lock_guard lock(mu_);
    collections_ = std::move(loaded);
    recovering_ = false;
  }
  if (options_.maintenance_interval > absl::ZeroDuration()) {
    maintenance_ = std::thread([this] { MaintenanceLoop(); });
  }
  return absl::OkStatus();
}

bool CollectionManager::recovering() const {
  std::lock_guard lock(mu_);
  return recovering_;
}

absl::StatusOr<std::shared_ptr<DurableCollection>> CollectionManager::Find(
    std::string_view name) const {
  std::lock_guard lock(mu_);
  if (recovering_) {
    return absl::UnavailableError("the store is recovering; try again soon");
  }
  if (closed_) return absl::FailedPreconditionError("the store is closed");
  auto it = collections_.find(AV(name));
  if (it == collections_.end()) return NotFound(name);
  return it->second;
}

absl::Status CollectionManager::CreateCollection(const CollectionSchema& schema,
                                                 Durability durability) {
  if (absl::Status s = ValidateSchema(schema); !s.ok()) return s;
  std::lock_guard ddl(ddl_mu_);
  {
    std::lock_guard lock(mu_);
    if (recovering_) {
      return absl::UnavailableError("the store is recovering; try again soon");
    }
    if (closed_) return absl::FailedPreconditionError("the store is closed");
    if (collections_.contains(schema.name)) {
      return absl::AlreadyExistsError(
          absl::StrCat("collection '", schema.name, "' already exists"));
    }
  }
  auto c = DurableCollection::Create(
      JoinPath(options_.data_dir, schema.name), schema,
      durability == Durability::kDefault ? options_.default_durability
                                         : durability,
      CollectionOptionsFor());
  if (!c.ok()) return c.status();
  std::lock_guard lock(mu_);
  collections_[schema.name] = *std::move(c);
  return absl::OkStatus();
}

absl::Status CollectionManager::DropCollection(std::string_view name) {
  std::lock_guard ddl(ddl_mu_);
  auto found = Find(name);
  if (!found.ok()) return found.status();
  std::shared_ptr<DurableCollection> c = *std::move(found);
  {
    std::lock_guard lock(mu_);
    collections_.erase(AV(name));
  }
  // Writes already queued finish (and are then deleted with the files).
  c->Close(/*checkpoint=*/false).IgnoreError();
  const std::string dir = JoinPath(options_.data_dir, name);
  const std::string doomed = dir + ".dropping";
  if (absl::Status s = env_->RenameFile(dir, doomed); !s.ok()) return s;
  if (absl::Status s = env_->SyncDir(options_.data_dir); !s.ok()) return s;
  return RemoveFlatDir(env_, doomed);
}

std::vector<std::string> CollectionManager::ListCollections() const {
  std::vector<std::string> names;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, c] : collections_) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<CollectionInfo> CollectionManager::Describe(
    std::string_view name) const {
  auto c = Find(name);
  if (!c.ok()) return c.status();
  const CollectionStats stats = (*c)->collection().Stats();
  CollectionInfo info;
  info.schema = (*c)->schema();
  info.default_durability = (*c)->default_durability();
  info.rows = stats.rows;
  info.live_rows = stats.live_rows;
  info.memory_bytes = stats.memory_bytes;
  info.disk_bytes = (*c)->disk_bytes();
  info.applied_sequence = (*c)->applied_sequence();
  info.durable_sequence = (*c)->durable_sequence();
  return info;
}

void CollectionManager::WriteAsync(std::string_view name, WriteMode mode,
                                   std::span<const uint64_t> ids,
                                   std::span<const float> vectors,
                                   const WriteOptions& options,
                                   WriteCallback done,
                                   std::shared_ptr<const void> owner) {
  auto c = Find(name);
  if (!c.ok()) {
    done(c.status());
    return;
  }
  (*c)->WriteAsync(mode, ids, vectors, options.durability, std::move(done),
                   std::move(owner));
}

void CollectionManager::DeleteAsync(std::string_view name,
                                    std::span<const uint64_t> ids,
                                    const WriteOptions& options,
                                    WriteCallback done) {
  auto c = Find(name);
  if (!c.ok()) {
    done(c.status());
    return;
  }
  (*c)->DeleteAsync(ids, options.durability, std::move(done));
}

absl::StatusOr<WriteAck> CollectionManager::Insert(
    std::string_view name, std::span<const uint64_t> ids,
    std::span<const float> vectors, const WriteOptions& options) {
  auto c = Find(name);
  if (!c.ok()) return c.status();
  return (*c)->Write(WriteMode::kInsert, ids, vectors, options.durability);
}

absl::StatusOr<WriteAck> CollectionManager::Upsert(
    std::string_view name, std::span<const uint64_t> ids,
    std::span<const float> vectors, const WriteOptions& options) {
  auto c = Find(name);
  if (!c.ok()) return c.status();
  return (*c)->Write(WriteMode::kUpsert, ids, vectors, options.durability);
}

absl::StatusOr<WriteAck> CollectionManager::Delete(
    std::string_view name, std::span<const uint64_t> ids,
    const WriteOptions& options) {
  auto c = Find(name);
  if (!c.ok()) return c.status();
  return (*c)->Delete(ids, options.durability);
}

absl::StatusOr<std::vector<std::optional<std::vector<float>>>>
CollectionManager::Get(std::string_view name,
                       std::span<const uint64_t> ids) const {
  auto c = Find(name);
  if (!c.ok()) return c.status();
  return (*c)->collection().Get(ids);
}

absl::StatusOr<SearchResults> CollectionManager::Search(
    std::string_view name, std::span<const float> queries,
    const SearchParams& params) const {
  auto c = Find(name);
  if (!c.ok()) return c.status();
  return (*c)->collection().Search(queries, params);
}

absl::StatusOr<std::shared_ptr<const Collection>>
CollectionManager::GetCollection(std::string_view name) const {
  auto c = Find(name);
  if (!c.ok()) return c.status();
  const Collection* collection = &(*c)->collection();
  // Aliasing constructor: the handle keeps the DurableCollection alive.
  return std::shared_ptr<const Collection>(*std::move(c), collection);
}

absl::Status CollectionManager::Checkpoint(std::string_view name) {
  auto c = Find(name);
  if (!c.ok()) return c.status();
  return (*c)->Checkpoint();
}

absl::StatusOr<int64_t> CollectionManager::Compact(std::string_view name) {
  auto c = Find(name);
  if (!c.ok()) return c.status();
  return (*c)->Compact(options_.compaction_dead_fraction);
}

void CollectionManager::MaintenanceLoop() {
  while (true) {
    {
      std::unique_lock lock(stop_mu_);
      const auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(stop_mu_) {
        return stop_;
      };
      // Capped at 100 years: steady_clock::now() + a saturated (292-year)
      // nanosecond duration would overflow and never wait.
      const absl::Duration interval =
          std::min(options_.maintenance_interval, absl::Hours(24 * 365 * 100));
      stop_cv_.wait_for(lock, absl::ToChronoNanoseconds(interval), stopping);
      if (stop_) return;
    }
    std::vector<std::shared_ptr<DurableCollection>> all;
    {
      std::lock_guard lock(mu_);
      for (const auto& [name, c] : collections_) all.push_back(c);
    }
    for (const auto& c : all) {
      const int64_t compacted = c->Compact(options_.compaction_dead_fraction);
      if (compacted > 0) {
        Log(absl::StrCat("compacted ", compacted, " blocks of '",
                         c->schema().name, "'"));
      }
      if (c->CheckpointDue(options_.checkpoint_wal_bytes,
                           options_.checkpoint_max_age)) {
        if (absl::Status s = c->Checkpoint(); !s.ok()) Log(SV(s.message()));
      }
    }
  }
}

absl::Status CollectionManager::Close() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
  absl::flat_hash_map<std::string, std::shared_ptr<DurableCollection>> all;
  {
    std::lock_guard lock(mu_);
    if (closed_) return absl::OkStatus();
    closed_ = true;
    all.swap(collections_);
  }
  absl::Status status;
  for (auto& [name, c] : all) status.Update(c->Close(/*checkpoint=*/true));
  return status;
}

CollectionManager::~CollectionManager() {
  if (absl::Status s = Close(); !s.ok()) Log(SV(s.message()));
}

}  // namespace peakknn
