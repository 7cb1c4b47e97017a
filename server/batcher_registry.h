// The dynamic batchers of the served collections: one Batcher per
// ServedCollection handle, created on the collection's first search.
//
// A batcher searches its handle directly (no lookup per batch), so every
// batch of it searches the same collection. A collection that is dropped
// and re-created under the same name is a new handle (ServiceCore hands out
// one handle per collection), so it gets a new batcher; the replaced one
// completes the searches already queued on it, over the old collection's
// last state, and stops when its last user lets go. At most one batcher
// per name is registered.
//
// Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "server/batcher.h"
#include "store/service_core.h"

namespace peakknn::server {

class BatcherRegistry {
 public:
  // `observer` (may be null) must outlive the registry.
  BatcherRegistry(const Batcher::Options& options, BatcherObserver* observer);
  // Stops every batcher (StopAll).
  ~BatcherRegistry();
  BatcherRegistry(const BatcherRegistry&) = delete;
  BatcherRegistry& operator=(const BatcherRegistry&) = delete;

  // The batcher of `collection`, created on first use; UNAVAILABLE after
  // StopAll.
  absl::StatusOr<std::shared_ptr<Batcher>> For(
      const std::shared_ptr<ServedCollection>& collection);

  // The named collection was dropped: completes the searches queued on its
  // batcher and stops it. Blocks for at most the batches queued.
  void Forget(std::string_view name);

  // Completes every queued search and stops every batcher; later calls to
  // For answer UNAVAILABLE. Idempotent.
  void StopAll();

 private:
  struct Entry {
    // What `batcher` searches; the batcher holds it alive, so the address
    // identifies the handle while the entry exists.
    const ServedCollection* collection = nullptr;
    std::shared_ptr<Batcher> batcher;
  };

  const Batcher::Options options_;
  BatcherObserver* const observer_;

  std::mutex mu_;
  // By collection name.
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace peakknn::server
