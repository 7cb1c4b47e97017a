#include "server/collection_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace peakknn::server {

absl::StatusOr<std::unique_ptr<CollectionRegistry>> CollectionRegistry::Open(
    const Options& options) {
  return std::unique_ptr<CollectionRegistry>(new CollectionRegistry(options));
}

absl::StatusOr<std::shared_ptr<CollectionRegistry::Entry>>
CollectionRegistry::Find(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return absl::NotFoundError(
        absl::StrCat("collection \"", name, "\" does not exist"));
  }
  return it->second;
}

CollectionInfo CollectionRegistry::InfoOf(Entry& entry) {
  CollectionInfo info;
  info.schema = entry.collection->schema();
  info.stats = entry.collection->Stats();
  absl::MutexLock lock(&entry.write_mu);
  info.last_sequence = entry.last_sequence;
  return info;
}

absl::StatusOr<CollectionInfo> CollectionRegistry::Create(
    const CollectionSchema& schema) {
  if (absl::Status s = ValidateSchema(schema); !s.ok()) return s;
  CollectionOptions options;
  options.block_rows = options_.block_rows;
  options.pool = options_.pool;
  absl::StatusOr<std::unique_ptr<Collection>> collection =
      Collection::Create(schema, options);
  if (!collection.ok()) return collection.status();
  auto entry = std::make_shared<Entry>();
  entry->collection = std::move(*collection);
  {
    absl::MutexLock lock(&mu_);
    if (!entries_.try_emplace(schema.name, entry).second) {
      return absl::AlreadyExistsError(
          absl::StrCat("collection \"", schema.name, "\" already exists"));
    }
  }
  return InfoOf(*entry);
}

absl::Status CollectionRegistry::Drop(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (entries_.erase(name) == 0) {
    return absl::NotFoundError(
        absl::StrCat("collection \"", name, "\" does not exist"));
  }
  return absl::OkStatus();
}

std::vector<CollectionInfo> CollectionRegistry::List() const {
  std::vector<std::shared_ptr<Entry>> entries;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, entry] : entries_) entries.push_back(entry);
  }
  std::vector<CollectionInfo> infos;
  infos.reserve(entries.size());
  for (const auto& entry : entries) infos.push_back(InfoOf(*entry));
  std::sort(infos.begin(), infos.end(), [](const auto& a, const auto& b) {
    return a.schema.name < b.schema.name;
  });
  return infos;
}

absl::StatusOr<CollectionInfo> CollectionRegistry::Describe(
    absl::string_view name) const {
  absl::StatusOr<std::shared_ptr<Entry>> entry = Find(name);
  if (!entry.ok()) return entry.status();
  return InfoOf(**entry);
}

absl::StatusOr<CollectionSchema> CollectionRegistry::Schema(
    absl::string_view name) const {
  absl::StatusOr<std::shared_ptr<Entry>> entry = Find(name);
  if (!entry.ok()) return entry.status();
  return (*entry)->collection->schema();
}

absl::StatusOr<WriteResult> CollectionRegistry::Write(
    absl::string_view name, WriteMode mode, std::span<const uint64_t> ids,
    std::span<const float> vectors) {
  absl::StatusOr<std::shared_ptr<Entry>> entry = Find(name);
  if (!entry.ok()) return entry.status();
  Entry& e = **entry;
  absl::MutexLock lock(&e.write_mu);
  if (absl::Status s = e.collection->Write(mode, ids, vectors); !s.ok()) {
    return s;
  }
  WriteResult result;
  result.sequence = ++e.last_sequence;
  result.rows = static_cast<int64_t>(ids.size());
  result.stats = e.collection->Stats();
  return result;
}

absl::StatusOr<WriteResult> CollectionRegistry::Delete(
    absl::string_view name, std::span<const uint64_t> ids) {
  absl::StatusOr<std::shared_ptr<Entry>> entry = Find(name);
  if (!entry.ok()) return entry.status();
  Entry& e = **entry;
  absl::MutexLock lock(&e.write_mu);
  WriteResult result;
  result.rows = e.collection->Delete(ids);
  result.sequence = ++e.last_sequence;
  result.stats = e.collection->Stats();
  return result;
}

absl::StatusOr<std::vector<std::optional<std::vector<float>>>>
CollectionRegistry::Get(absl::string_view name,
                        std::span<const uint64_t> ids) const {
  absl::StatusOr<std::shared_ptr<Entry>> entry = Find(name);
  if (!entry.ok()) return entry.status();
  return (*entry)->collection->Get(ids);
}

absl::StatusOr<SearchOutcome> CollectionRegistry::Search(
    absl::string_view name, std::span<const float> queries,
    const SearchParams& params) const {
  absl::StatusOr<std::shared_ptr<Entry>> entry = Find(name);
  if (!entry.ok()) return entry.status();
  const Collection& collection = *(*entry)->collection;
  // The engine searches its own snapshot; this one (taken just before) sizes
  // the FLOP count and may trail it by the rows of a concurrent write.
  const std::shared_ptr<const Snapshot> snapshot = collection.snapshot();
  absl::StatusOr<SearchResults> results = collection.Search(queries, params);
  if (!results.ok()) return results.status();
  SearchOutcome outcome;
  outcome.results = std::move(*results);
  outcome.rows_scanned = snapshot->rows;
  outcome.live_rows = snapshot->live_rows;
  return outcome;
}

absl::Status CollectionRegistry::Checkpoint() {
  return absl::UnimplementedError(
      "checkpoint: this server keeps collections in memory only (durable "
      "storage not wired into the server yet); nothing was written");
}

}  // namespace peakknn::server
