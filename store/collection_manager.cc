#include "store/collection_manager.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/string_view.h"
#include "store/data_dir.h"

namespace peakknn {
namespace {

absl::Status NotFound(std::string_view name) {
  return absl::NotFoundError(
      absl::StrCat("collection '", AV(name), "' does not exist"));
}

CollectionInfo Describe(const DurableCollection& c) {
  const CollectionStats stats = c.collection().Stats();
  CollectionInfo info;
  info.schema = c.schema();
  info.default_durability = c.default_durability();
  info.rows = stats.rows;
  info.live_rows = stats.live_rows;
  info.memory_bytes = stats.memory_bytes;
  info.disk_bytes = c.disk_bytes();
  info.applied_sequence = c.applied_sequence();
  info.durable_sequence = c.durable_sequence();
  return info;
}

}  // namespace

// A DurableCollection served through the ServiceCore interface; holding the
// handle keeps the collection (its last state, after a drop) alive.
class ManagedCollection final : public ServedCollection {
 public:
  ManagedCollection(std::shared_ptr<DurableCollection> c, LogFunction log)
      : c_(std::move(c)),
        checkpoint_errors_(absl::Minutes(1), std::move(log)) {}

  const CollectionSchema& schema() const override { return c_->schema(); }
  // A local store's acknowledged writes are visible at once: every
  // consistency requirement is met.
  absl::StatusOr<SearchResults> Search(
      std::span<const float> queries, const SearchParams& params,
      const ReadConsistency& /*consistency*/) const override {
    return c_->collection().SearchChecked(queries, params);
  }
  void WriteAsync(WriteMode mode, std::span<const uint64_t> ids,
                  std::span<const float> vectors, const WriteOptions& options,
                  WriteCallback done,
                  std::shared_ptr<const void> owner) override {
    c_->WriteAsync(mode, ids, vectors, options.durability, std::move(done),
                   std::move(owner));
  }
  void DeleteAsync(std::span<const uint64_t> ids, const WriteOptions& options,
                   WriteCallback done) override {
    c_->DeleteAsync(ids, options.durability, std::move(done));
  }
  absl::StatusOr<std::vector<std::optional<std::vector<float>>>> Get(
      std::span<const uint64_t> ids,
      const ReadConsistency& /*consistency*/) const override {
    return c_->collection().Get(ids);
  }
  RowCounts row_counts() const override {
    const std::shared_ptr<const Snapshot> snapshot =
        c_->collection().snapshot();
    return {snapshot->rows, snapshot->live_rows};
  }

  const std::shared_ptr<DurableCollection>& durable() const { return c_; }
  // Background checkpoint failures: an ongoing fault fails every try (each
  // maintenance pass), so one line a minute.
  LogThrottle& checkpoint_errors() { return checkpoint_errors_; }

 private:
  const std::shared_ptr<DurableCollection> c_;
  LogThrottle checkpoint_errors_;
};

CollectionManager::CollectionManager(const ManagerOptions& options)
    : options_(options),
      env_(options.env != nullptr ? options.env : Env::Default()),
      log_(LogOrStderr(options.log)) {}

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

DurableCollectionOptions CollectionManager::CollectionOptionsFor() const {
  DurableCollectionOptions o;
  o.env = env_;
  o.collection.block_rows = options_.block_rows;
  o.collection.pool = options_.pool;
  o.collection.backend = options_.backend;
  o.wal_segment_bytes = options_.wal_segment_bytes;
  o.truncate_corrupt_wal = options_.truncate_corrupt_wal;
  o.idle_timeout = options_.collection_idle_timeout;
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
  absl::flat_hash_map<std::string, std::shared_ptr<ManagedCollection>> loaded;
  for (const std::string& name : *names) {
    const std::string path = JoinPath(options_.data_dir, name);
    switch (ClassifyDataDirEntry(env_, options_.data_dir, name)) {
      case DataDirEntry::kInterrupted:
        log_(absl::StrCat("removing ", path,
                          ", left by an interrupted create or drop"));
        if (absl::Status s = RemoveFlatDir(env_, path); !s.ok()) return s;
        continue;
      case DataDirEntry::kOther:
        log_(absl::StrCat("ignoring ", path,
                          ": not a collection (no MANIFEST)"));
        continue;
      case DataDirEntry::kCollection:
        break;
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
    loaded[name] = std::make_shared<ManagedCollection>(*std::move(c), log_);
  }
  if (static_cast<int64_t>(loaded.size()) > options_.max_collections) {
    log_(absl::StrCat(
        options_.data_dir, " holds ", loaded.size(),
        " collections, more than --max_collections=", options_.max_collections,
        ": serving all of them; creates are refused until drops bring the "
        "count below the limit"));
  }
  {
    std::lock_guard lock(mu_);
    collections_ = std::move(loaded);
    recovering_ = false;
  }
  if (options_.maintenance_interval > absl::ZeroDuration()) {
    maintenance_ = std::make_unique<PeriodicTask>(options_.maintenance_interval,
                                                  [this] { RunMaintenance(); });
  }
  return absl::OkStatus();
}

absl::Status CollectionManager::Ready() const {
  std::lock_guard lock(mu_);
  if (recovering_) {
    return absl::UnavailableError(
        "the store is recovering its collections (replaying the write-ahead "
        "log); retry shortly");
  }
  if (closed_) return absl::FailedPreconditionError("the store is closed");
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<DurableCollection>> CollectionManager::Find(
    std::string_view name) const {
  PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<ManagedCollection> handle,
                           FindHandle(name));
  return handle->durable();
}

absl::StatusOr<std::shared_ptr<ManagedCollection>>
CollectionManager::FindHandle(std::string_view name) const {
  if (absl::Status s = Ready(); !s.ok()) return s;
  std::lock_guard lock(mu_);
  auto it = collections_.find(AV(name));
  if (it == collections_.end()) return NotFound(name);
  return it->second;
}

absl::Status CollectionManager::CreateCollection(const CollectionSchema& schema,
                                                 Durability durability) {
  if (absl::Status s = ValidateSchema(schema); !s.ok()) return s;
  std::lock_guard ddl(ddl_mu_);
  if (absl::Status s = Ready(); !s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    if (collections_.contains(schema.name)) {
      return absl::AlreadyExistsError(
          absl::StrCat("collection '", schema.name, "' already exists"));
    }
    // Under ddl_mu_: no other create can pass this check meanwhile.
    if (static_cast<int64_t>(collections_.size()) >= options_.max_collections) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot create collection '", schema.name, "': ", collections_.size(),
          " collections exist and --max_collections=", options_.max_collections,
          "; drop one, or restart with a larger --max_collections (it must "
          "fit the open-file limit)"));
    }
  }
  auto c = DurableCollection::Create(
      JoinPath(options_.data_dir, schema.name), schema,
      durability == Durability::kDefault ? options_.default_durability
                                         : durability,
      CollectionOptionsFor());
  if (!c.ok()) return c.status();
  std::lock_guard lock(mu_);
  collections_[schema.name] =
      std::make_shared<ManagedCollection>(*std::move(c), log_);
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
  // Writes already queued finish (and are then deleted with the files);
  // later ones through an open handle get NOT_FOUND.
  c->CloseForDrop();
  return DropCollectionDir(env_, JoinPath(options_.data_dir, name));
}

absl::StatusOr<std::vector<CollectionInfo>> CollectionManager::ListCollections()
    const {
  if (absl::Status s = Ready(); !s.ok()) return s;
  std::vector<std::shared_ptr<DurableCollection>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, c] : collections_) all.push_back(c->durable());
  }
  std::vector<CollectionInfo> infos;
  infos.reserve(all.size());
  for (const auto& c : all) infos.push_back(Describe(*c));
  std::sort(infos.begin(), infos.end(),
            [](const CollectionInfo& a, const CollectionInfo& b) {
              return a.schema.name < b.schema.name;
            });
  return infos;
}

absl::StatusOr<CollectionInfo> CollectionManager::DescribeCollection(
    std::string_view name) const {
  PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<DurableCollection> c, Find(name));
  return Describe(*c);
}

absl::StatusOr<std::shared_ptr<ServedCollection>>
CollectionManager::OpenCollection(std::string_view name) const {
  return FindHandle(name);
}

CoreStats CollectionManager::Stats() const {
  CoreStats stats;
  stats.backend = options_.backend != nullptr
                      ? std::string(options_.backend->name())
                      : std::string("cpu");
  stats.backend_device_memory_bytes =
      options_.backend != nullptr ? options_.backend->device_memory_bytes() : 0;
  return stats;
}

absl::StatusOr<WriteAck> CollectionManager::Insert(
    std::string_view name, std::span<const uint64_t> ids,
    std::span<const float> vectors, const WriteOptions& options) {
  PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<DurableCollection> c, Find(name));
  return c->Write(WriteMode::kInsert, ids, vectors, options.durability);
}

absl::StatusOr<WriteAck> CollectionManager::Upsert(
    std::string_view name, std::span<const uint64_t> ids,
    std::span<const float> vectors, const WriteOptions& options) {
  PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<DurableCollection> c, Find(name));
  return c->Write(WriteMode::kUpsert, ids, vectors, options.durability);
}

absl::StatusOr<WriteAck> CollectionManager::Delete(
    std::string_view name, std::span<const uint64_t> ids,
    const WriteOptions& options) {
  PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<DurableCollection> c, Find(name));
  return c->Delete(ids, options.durability);
}

absl::StatusOr<std::vector<std::optional<std::vector<float>>>>
CollectionManager::Get(std::string_view name,
                       std::span<const uint64_t> ids) const {
  PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<DurableCollection> c, Find(name));
  return c->collection().Get(ids);
}

absl::StatusOr<SearchResults> CollectionManager::Search(
    std::string_view name, std::span<const float> queries,
    const SearchParams& params) const {
  PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<DurableCollection> c, Find(name));
  return c->collection().Search(queries, params);
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

void CollectionManager::RunMaintenance() {
  std::vector<std::shared_ptr<ManagedCollection>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, c] : collections_) all.push_back(c);
  }
  for (const auto& handle : all) {
    DurableCollection& c = *handle->durable();
    const int64_t compacted = c.Compact(options_.compaction_dead_fraction);
    if (compacted > 0) {
      log_(absl::StrCat("compacted ", compacted, " blocks of '",
                        c.schema().name, "'"));
    }
    if (c.CheckpointDue(options_.checkpoint_wal_bytes,
                        options_.checkpoint_max_age)) {
      if (absl::Status s = c.Checkpoint(); !s.ok()) {
        handle->checkpoint_errors().Log(SV(s.message()));
      }
    }
  }
}

absl::Status CollectionManager::Close() {
  if (maintenance_ != nullptr) maintenance_->Stop();
  absl::flat_hash_map<std::string, std::shared_ptr<ManagedCollection>> all;
  {
    std::lock_guard lock(mu_);
    if (closed_) return absl::OkStatus();
    closed_ = true;
    all.swap(collections_);
  }
  absl::Status status;
  for (auto& [name, c] : all) {
    status.Update(c->durable()->Close(/*checkpoint=*/true));
  }
  return status;
}

CollectionManager::~CollectionManager() {
  if (absl::Status s = Close(); !s.ok()) log_(SV(s.message()));
}

}  // namespace peakknn
