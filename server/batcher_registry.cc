#include "server/batcher_registry.h"

#include <utility>

#include "absl/status/status.h"
#include "base/string_view.h"

namespace peakknn::server {

BatcherRegistry::BatcherRegistry(const Batcher::Options& options,
                                 BatcherObserver* observer)
    : options_(options), observer_(observer) {}

BatcherRegistry::~BatcherRegistry() { StopAll(); }

absl::StatusOr<std::shared_ptr<Batcher>> BatcherRegistry::For(
    const std::shared_ptr<ServedCollection>& collection) {
  const CollectionSchema& schema = collection->schema();
  // Declared before the lock so that a replaced batcher, if this was its
  // last user, drains after the lock is released.
  std::shared_ptr<Batcher> replaced;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return absl::UnavailableError("server is shutting down");
  Entry& entry = entries_[schema.name];
  if (entry.collection == collection.get()) return entry.batcher;
  replaced = std::move(entry.batcher);
  entry.collection = collection.get();
  entry.batcher = std::make_shared<Batcher>(
      schema.name, schema.dim, options_,
      [collection](std::span<const float> queries, const SearchParams& params,
                   const ReadConsistency& consistency) {
        return collection->Search(queries, params, consistency);
      },
      observer_);
  return entry.batcher;
}

void BatcherRegistry::Forget(std::string_view name) {
  std::shared_ptr<Batcher> batcher;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(AV(name));
    if (it == entries_.end()) return;
    batcher = std::move(it->second.batcher);
    entries_.erase(it);
  }
  batcher->Stop();
}

void BatcherRegistry::StopAll() {
  absl::flat_hash_map<std::string, Entry> entries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    entries.swap(entries_);
  }
  // Each Stop completes that collection's queued searches first.
  for (auto& [name, entry] : entries) entry.batcher->Stop();
}

}  // namespace peakknn::server
